//! Bulk upsert of the directory, batch by batch, for imports of any size (CSV or JSON).
//!
//! A person is found by external id, else by e-mail (case-insensitive); a row that finds
//! nobody creates a person. Only the fields a row carries are written: a CSV without a
//! `department` column leaves departments alone. Relations (manager, HR partner, team
//! leaders, coaches) may name people further down the file, so they are collected as the
//! batches go and resolved once, at the end.
//!
//! One [`ImportSession`] holds one connection (the pending relations live in a temporary
//! table on it); each batch commits on its own, so a failure later in a file never undoes
//! rows already imported, and importing the same file again changes nothing.

use crate::{Store, StoreError};
use chrono::NaiveDate;
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::Postgres;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Which fields a row carries (bits of [`ImportPerson::fields`]).
pub mod field {
    pub const EMAIL: i32 = 1;
    pub const FIRST_NAME: i32 = 1 << 1;
    pub const LAST_NAME: i32 = 1 << 2;
    pub const PHONE: i32 = 1 << 3;
    pub const TIME_ZONE: i32 = 1 << 4;
    pub const DEPARTMENT: i32 = 1 << 5;
    pub const JOB_TITLE: i32 = 1 << 6;
    pub const LOCATION: i32 = 1 << 7;
    pub const LANGUAGE: i32 = 1 << 8;
    pub const TEAMS: i32 = 1 << 9;
    pub const ROLES: i32 = 1 << 10;
    pub const JOINING_DATE: i32 = 1 << 11;
    pub const ATTRIBUTES: i32 = 1 << 12;
    pub const TEAMS_CONVERSATION: i32 = 1 << 13;
    pub const ACTIVE: i32 = 1 << 14;
}

/// One validated row. Values are already checked (e-mail, phone, dates, time zone) at the
/// edge; `fields` says which of them the row sets.
#[derive(Debug, Clone, Default)]
pub struct ImportPerson {
    /// Where the row came from (CSV line, JSON index), for the error report.
    pub row: i64,
    pub fields: i32,
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub time_zone: Option<String>,
    pub department: Option<String>,
    pub job_title: Option<String>,
    pub location: Option<String>,
    pub language: Option<String>,
    pub teams: Vec<String>,
    pub roles: Vec<String>,
    pub joining_date: Option<NaiveDate>,
    pub attributes: Option<Value>,
    pub teams_conversation: Option<Value>,
    pub active: Option<bool>,
    /// References (id, e-mail or external id); `None` leaves the relation alone, `Some("")`
    /// or an empty list clears it.
    pub manager: Option<String>,
    pub hr_partner: Option<String>,
    pub team_leaders: Option<Vec<String>>,
    pub coaches: Option<Vec<String>>,
}

impl ImportPerson {
    /// The key that says two rows are the same person.
    fn key(&self) -> Option<String> {
        match (&self.external_id, &self.email) {
            (Some(x), _) => Some(format!("x:{x}")),
            (None, Some(e)) => Some(format!("e:{}", e.to_lowercase())),
            (None, None) => None,
        }
    }
}

/// A row that was not (fully) imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub row: i64,
    pub field: Option<String>,
    pub message: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportCounts {
    pub inserted: u64,
    pub updated: u64,
}

pub struct ImportSession {
    conn: PoolConnection<Postgres>,
    counts: ImportCounts,
    /// People with a relation waiting for the pass at the end; every later row of theirs
    /// waits too, so that the file's order still decides.
    pending_relations: HashSet<Uuid>,
}

impl Store {
    /// Starts an import on a dedicated connection.
    pub async fn begin_import(&self) -> Result<ImportSession, StoreError> {
        let mut conn = self.pool().acquire().await?;
        sqlx::query(
            "CREATE TEMPORARY TABLE IF NOT EXISTS import_relations (
                 row_no    bigint NOT NULL,
                 person_id uuid   NOT NULL,
                 kind      text   NOT NULL,
                 ref       text,
                 related_id uuid
             ) ON COMMIT PRESERVE ROWS",
        )
        .execute(&mut *conn)
        .await?;
        sqlx::query("TRUNCATE import_relations")
            .execute(&mut *conn)
            .await?;
        // Batches commit without waiting for their WAL flush; `finish` commits with the
        // flush, which covers every earlier commit (the WAL is one sequence). So nothing is
        // reported imported before it is durable, and the batches do not each wait on disk.
        sqlx::query("SET synchronous_commit = off")
            .execute(&mut *conn)
            .await?;
        Ok(ImportSession {
            conn,
            counts: ImportCounts::default(),
            pending_relations: HashSet::new(),
        })
    }
}

/// The statement behind each batch: resolve every row to a person (external id first, then
/// an e-mail on a person without a different external id), refuse a row whose e-mail
/// belongs to someone else, update the found, insert the rest. One round trip.
///
/// The insert has no `ON CONFLICT` clause: a speculative insertion costs about a third more
/// per row (docs/benchmarks.md). A unique violation means another writer inserted the same
/// person since the lookup; the batch then runs again and finds them. The last attempt adds
/// `ON CONFLICT DO NOTHING` ([`UPSERT_LAST_RESORT`]) so that a row which keeps losing the
/// race is reported rather than failing the import.
const UPSERT: &str = "
WITH input AS (
    SELECT * FROM UNNEST($1::bigint[], $2::int[], $3::uuid[], $4::text[], $5::text[],
                         $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                         $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
                         $16::date[], $17::jsonb[], $18::jsonb[], $19::bool[], $20::text[])
        AS i(row_no, fields, new_id, external_id, email, first_name, last_name, phone,
             time_zone, department, job_title, location, language, teams, roles,
             joining_date, attributes, teams_conversation, active, manager_ref)
), resolved AS (
    SELECT i.*,
           -- A manager already in the directory (named by external id or e-mail) is set in
           -- this statement; the rest wait for the pass at the end of the import.
           CASE WHEN nullif(i.manager_ref, '') IS NULL THEN NULL
                ELSE (SELECT m.id FROM people m WHERE m.external_id = i.manager_ref
                      UNION ALL
                      SELECT m.id FROM people m WHERE lower(m.email) = lower(i.manager_ref)
                      LIMIT 1) END AS manager_found,
           CASE WHEN i.external_id IS NOT NULL
                THEN coalesce(bx.id, CASE WHEN be.external_id IS NULL THEN be.id END)
                ELSE be.id END AS person_id,
           be.id AS email_owner, be.external_id AS email_owner_external_id
    FROM input i
    LEFT JOIN people bx ON i.external_id IS NOT NULL AND bx.external_id = i.external_id
    LEFT JOIN people be ON i.email IS NOT NULL AND lower(be.email) = lower(i.email)
), checked AS (
    SELECT r.*, (r.email_owner IS NOT NULL AND r.email_owner IS DISTINCT FROM r.person_id) AS conflict
    FROM resolved r
), updated AS (
    UPDATE people p SET
        external_id  = coalesce(c.external_id, p.external_id),
        email        = CASE WHEN c.fields & 1 <> 0 THEN c.email ELSE p.email END,
        first_name   = CASE WHEN c.fields & 2 <> 0 THEN coalesce(c.first_name, '') ELSE p.first_name END,
        last_name    = CASE WHEN c.fields & 4 <> 0 THEN coalesce(c.last_name, '') ELSE p.last_name END,
        phone        = CASE WHEN c.fields & 8 <> 0 THEN c.phone ELSE p.phone END,
        time_zone    = CASE WHEN c.fields & 16 <> 0 THEN coalesce(c.time_zone, 'UTC') ELSE p.time_zone END,
        department   = CASE WHEN c.fields & 32 <> 0 THEN c.department ELSE p.department END,
        job_title    = CASE WHEN c.fields & 64 <> 0 THEN c.job_title ELSE p.job_title END,
        location     = CASE WHEN c.fields & 128 <> 0 THEN c.location ELSE p.location END,
        language     = CASE WHEN c.fields & 256 <> 0 THEN c.language ELSE p.language END,
        teams        = CASE WHEN c.fields & 512 <> 0 THEN string_to_array(c.teams, chr(31)) ELSE p.teams END,
        roles        = CASE WHEN c.fields & 1024 <> 0 THEN string_to_array(c.roles, chr(31)) ELSE p.roles END,
        joining_date = CASE WHEN c.fields & 2048 <> 0 THEN c.joining_date ELSE p.joining_date END,
        attributes   = CASE WHEN c.fields & 4096 <> 0 THEN coalesce(c.attributes, '{}') ELSE p.attributes END,
        teams_conversation = CASE WHEN c.fields & 8192 <> 0 THEN c.teams_conversation ELSE p.teams_conversation END,
        active       = CASE WHEN c.fields & 16384 <> 0 THEN coalesce(c.active, true) ELSE p.active END,
        manager_id   = CASE WHEN c.manager_found IS NOT NULL THEN c.manager_found
                            WHEN c.manager_ref = '' THEN NULL
                            ELSE p.manager_id END,
        deactivated_at = CASE WHEN c.fields & 16384 = 0 THEN p.deactivated_at
                              WHEN coalesce(c.active, true) THEN NULL
                              ELSE coalesce(p.deactivated_at, now()) END,
        updated_at   = now()
    FROM checked c
    WHERE p.id = c.person_id AND NOT c.conflict
    RETURNING c.row_no, p.id, c.manager_found
), inserted AS (
    INSERT INTO people (id, external_id, email, first_name, last_name, phone, time_zone,
                        department, job_title, location, language, teams, roles,
                        joining_date, attributes, teams_conversation, active, deactivated_at,
                        manager_id)
    SELECT c.new_id, c.external_id, c.email, coalesce(c.first_name, ''), coalesce(c.last_name, ''),
           c.phone, coalesce(c.time_zone, 'UTC'), c.department, c.job_title, c.location,
           c.language, coalesce(string_to_array(c.teams, chr(31)), '{}'),
           coalesce(string_to_array(c.roles, chr(31)), '{}'), c.joining_date,
           coalesce(c.attributes, '{}'), c.teams_conversation, coalesce(c.active, true),
           CASE WHEN coalesce(c.active, true) THEN NULL ELSE now() END, c.manager_found
    FROM checked c
    WHERE c.person_id IS NULL AND NOT c.conflict
    /*on_conflict*/
    RETURNING id
)
SELECT c.row_no, 'conflict' AS outcome, c.email_owner_external_id AS detail, NULL::uuid AS id,
       NULL::uuid AS manager_id
    FROM checked c WHERE c.conflict
UNION ALL SELECT u.row_no, 'updated', NULL, u.id, u.manager_found FROM updated u
UNION ALL SELECT c.row_no, 'inserted', NULL, c.new_id, c.manager_found
    FROM checked c JOIN inserted n ON n.id = c.new_id";

static UPSERT_LAST_RESORT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| UPSERT.replace("/*on_conflict*/", "ON CONFLICT DO NOTHING"));

/// How many times a batch runs before it gives up on a deadlock or takes the last resort
/// on a unique violation.
const ATTEMPTS: u32 = 5;

/// One row's fate: (row, `inserted`|`updated`|`conflict`, the e-mail owner's external id on a
/// conflict, the person's id, the manager set in the same statement).
type UpsertOutcome = (i64, String, Option<String>, Option<Uuid>, Option<Uuid>);

/// Characters that cannot appear in a team or role name carry the list through one text
/// parameter (a ragged text[][] cannot be bound).
const LIST_SEPARATOR: char = '\u{1f}';

impl ImportSession {
    /// Upserts one batch; returns the rows that failed. A row that repeats a person of the
    /// same batch runs in a second round after the first, so the file's order decides (the
    /// last row wins), as if rows ran one by one.
    #[tracing::instrument(skip_all, fields(rows = rows.len()))]
    pub async fn upsert(&mut self, rows: Vec<ImportPerson>) -> Result<Vec<RowError>, StoreError> {
        let mut pending = rows;
        let mut errors = Vec::new();
        while !pending.is_empty() {
            let (batch, later) = split_repeats(pending, &mut errors);
            errors.extend(self.upsert_distinct(batch).await?);
            pending = later;
        }
        Ok(errors)
    }

    async fn upsert_distinct(
        &mut self,
        rows: Vec<ImportPerson>,
    ) -> Result<Vec<RowError>, StoreError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let join = |v: &Vec<String>| -> String {
            v.iter()
                .map(|s| s.replace(LIST_SEPARATOR, ""))
                .collect::<Vec<_>>()
                .join(&LIST_SEPARATOR.to_string())
        };
        let n = rows.len();
        let mut row_no = Vec::with_capacity(n);
        let mut fields = Vec::with_capacity(n);
        let mut new_id = Vec::with_capacity(n);
        let mut external_id = Vec::with_capacity(n);
        let mut email = Vec::with_capacity(n);
        let mut first_name = Vec::with_capacity(n);
        let mut last_name = Vec::with_capacity(n);
        let mut phone = Vec::with_capacity(n);
        let mut time_zone = Vec::with_capacity(n);
        let mut department = Vec::with_capacity(n);
        let mut job_title = Vec::with_capacity(n);
        let mut location = Vec::with_capacity(n);
        let mut language = Vec::with_capacity(n);
        let mut teams: Vec<Option<String>> = Vec::with_capacity(n);
        let mut roles: Vec<Option<String>> = Vec::with_capacity(n);
        let mut joining_date = Vec::with_capacity(n);
        let mut attributes = Vec::with_capacity(n);
        let mut teams_conversation = Vec::with_capacity(n);
        let mut active = Vec::with_capacity(n);
        let mut manager_ref: Vec<Option<String>> = Vec::with_capacity(n);
        for r in &rows {
            manager_ref.push(r.manager.as_deref().map(|m| m.trim().to_owned()));
            row_no.push(r.row);
            fields.push(r.fields);
            new_id.push(Uuid::now_v7());
            external_id.push(r.external_id.clone());
            email.push(r.email.clone());
            first_name.push(r.first_name.clone());
            last_name.push(r.last_name.clone());
            phone.push(r.phone.clone());
            time_zone.push(r.time_zone.clone());
            department.push(r.department.clone());
            job_title.push(r.job_title.clone());
            location.push(r.location.clone());
            language.push(r.language.clone());
            // string_to_array('') is an empty array; NULL stays NULL (-> '{}' on insert).
            teams.push(Some(join(&r.teams)));
            roles.push(Some(join(&r.roles)));
            joining_date.push(r.joining_date);
            attributes.push(r.attributes.clone());
            teams_conversation.push(r.teams_conversation.clone());
            active.push(r.active);
        }
        let mut attempt = 0;
        let (mut tx, outcomes) = loop {
            attempt += 1;
            let statement = if attempt < ATTEMPTS {
                UPSERT
            } else {
                UPSERT_LAST_RESORT.as_str()
            };
            let mut tx = sqlx::Connection::begin(&mut *self.conn).await?;
            let result: Result<Vec<UpsertOutcome>, sqlx::Error> = sqlx::query_as(statement)
                .bind(&row_no)
                .bind(&fields)
                .bind(&new_id)
                .bind(&external_id)
                .bind(&email)
                .bind(&first_name)
                .bind(&last_name)
                .bind(&phone)
                .bind(&time_zone)
                .bind(&department)
                .bind(&job_title)
                .bind(&location)
                .bind(&language)
                .bind(&teams)
                .bind(&roles)
                .bind(&joining_date)
                .bind(&attributes)
                .bind(&teams_conversation)
                .bind(&active)
                .bind(&manager_ref)
                .fetch_all(&mut *tx)
                .await;
            match result {
                Ok(outcomes) => break (tx, outcomes),
                // Two imports (or two writers of one) that touch the same people in a
                // different order can deadlock, or insert the same new person; Postgres
                // undoes one, which simply runs again (and then finds that person).
                Err(sqlx::Error::Database(e))
                    if matches!(e.code().as_deref(), Some("40P01") | Some("23505"))
                        && attempt < ATTEMPTS =>
                {
                    tracing::debug!(attempt, code = ?e.code(), "import batch refused; running it again");
                    drop(tx);
                }
                Err(e) => return Err(e.into()),
            }
        };
        let mut errors = Vec::new();
        let mut ids: HashMap<i64, Uuid> = HashMap::with_capacity(n);
        let mut managers: HashMap<i64, Uuid> = HashMap::new();
        for (row, outcome, detail, id, manager) in outcomes {
            if let Some(m) = manager {
                managers.insert(row, m);
            }
            match (outcome.as_str(), id) {
                ("inserted", Some(id)) => {
                    self.counts.inserted += 1;
                    ids.insert(row, id);
                }
                ("updated", Some(id)) => {
                    self.counts.updated += 1;
                    ids.insert(row, id);
                }
                _ => errors.push(RowError {
                    row,
                    field: Some("email".into()),
                    message: match detail {
                        Some(x) => {
                            format!("this e-mail belongs to another person (external id {x})")
                        }
                        None => "this e-mail belongs to another person".into(),
                    },
                }),
            }
        }
        // A row neither updated nor inserted nor in conflict lost a race with a concurrent
        // import of the same person (ON CONFLICT DO NOTHING): say so rather than drop it.
        for r in &rows {
            if !ids.contains_key(&r.row) && !errors.iter().any(|e| e.row == r.row) {
                errors.push(RowError {
                    row: r.row,
                    field: None,
                    message: "the same person was written concurrently; import this row again"
                        .into(),
                });
            }
        }
        queue_relations(&mut tx, &rows, &ids, &managers, &mut self.pending_relations).await?;
        tx.commit().await?;
        Ok(errors)
    }
}

/// Queues, for the pass at the end, the relations a batch could not settle itself: a manager
/// not yet in the directory, and every HR partner, team leader and coach. A row whose only
/// relation is a manager set in its own statement (the common case) queues nothing, unless
/// an earlier row of the same person is waiting.
async fn queue_relations(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    rows: &[ImportPerson],
    ids: &HashMap<i64, Uuid>,
    managers: &HashMap<i64, Uuid>,
    pending: &mut HashSet<Uuid>,
) -> Result<(), StoreError> {
    let (mut row_no, mut person, mut kind, mut reference, mut related) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::<Option<String>>::new(),
        Vec::<Option<Uuid>>::new(),
    );
    // A queued row carries all its references, the ones already set included, so the pass
    // at the end still sees the file's order; it rewrites only what differs.
    let mut push = |r: i64, id: Uuid, k: &str, v: Option<String>, found: Option<Uuid>| {
        row_no.push(r);
        person.push(id);
        kind.push(k.to_owned());
        reference.push(v);
        related.push(found);
    };
    for r in rows {
        let Some(&id) = ids.get(&r.row) else { continue };
        let manager_settled = match r.manager.as_deref().map(str::trim) {
            None | Some("") => true,
            Some(_) => managers.contains_key(&r.row),
        };
        let settled = manager_settled
            && r.hr_partner.is_none()
            && r.team_leaders.is_none()
            && r.coaches.is_none()
            && !pending.contains(&id);
        if settled {
            continue;
        }
        pending.insert(id);
        let one = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        if r.manager.is_some() {
            push(
                r.row,
                id,
                "manager",
                one(&r.manager),
                managers.get(&r.row).copied(),
            );
        }
        if r.hr_partner.is_some() {
            push(r.row, id, "hr_partner", one(&r.hr_partner), None);
        }
        for (k, list) in [("team_leader", &r.team_leaders), ("coach", &r.coaches)] {
            if let Some(list) = list {
                // A NULL ref row says "this person's list is given" even when empty.
                push(r.row, id, k, None, None);
                for v in list {
                    push(r.row, id, k, Some(v.clone()), None);
                }
            }
        }
    }
    if row_no.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO import_relations (row_no, person_id, kind, ref, related_id)
             SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::uuid[])",
    )
    .bind(&row_no)
    .bind(&person)
    .bind(&kind)
    .bind(&reference)
    .bind(&related)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl ImportSession {
    /// Resolves the relations of the whole import, and returns the
    /// counts with the rows whose relations named nobody (the person itself is imported).
    #[tracing::instrument(skip_all)]
    pub async fn finish(mut self) -> Result<(ImportCounts, Vec<RowError>), StoreError> {
        let mut errors = Vec::new();
        let mut tx = sqlx::Connection::begin(&mut *self.conn).await?;
        sqlx::query("SET LOCAL synchronous_commit = on")
            .execute(&mut *tx)
            .await?;
        // Resolve every reference once: an id, else an e-mail, else an external id.
        // Set-based (hash joins), not a lookup per reference: a directory names a manager
        // on nearly every row.
        for resolve in [
            "UPDATE import_relations r SET related_id = p.id FROM people p
             WHERE r.related_id IS NULL AND r.ref IS NOT NULL
               AND p.id = CASE WHEN r.ref ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                               THEN r.ref::uuid END",
            "UPDATE import_relations r SET related_id = p.id FROM people p
             WHERE r.related_id IS NULL AND r.ref IS NOT NULL AND lower(p.email) = lower(r.ref)",
            "UPDATE import_relations r SET related_id = p.id FROM people p
             WHERE r.related_id IS NULL AND r.ref IS NOT NULL AND p.external_id = r.ref",
        ] {
            sqlx::query(resolve).execute(&mut *tx).await?;
        }
        let unresolved: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT row_no, kind, ref FROM import_relations
             WHERE ref IS NOT NULL AND related_id IS NULL ORDER BY row_no",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (row, kind, reference) in unresolved {
            errors.push(RowError {
                row,
                field: Some(kind.clone()),
                message: format!(
                    "{} \"{reference}\" is not in the directory",
                    kind.replace('_', " ")
                ),
            });
        }
        // Manager and HR partner: the last row that names them wins (row order).
        for (kind, column) in [("manager", "manager_id"), ("hr_partner", "hr_partner_id")] {
            sqlx::query(&format!(
                "UPDATE people p SET {column} = r.related_id, updated_at = now()
                 FROM (SELECT DISTINCT ON (person_id) person_id, related_id, ref
                       FROM import_relations WHERE kind = $1
                       ORDER BY person_id, row_no DESC) r
                 WHERE p.id = r.person_id AND (r.ref IS NULL OR r.related_id IS NOT NULL)
                   AND p.{column} IS DISTINCT FROM r.related_id"
            ))
            .bind(kind)
            .execute(&mut *tx)
            .await?;
        }
        // Team leaders and coaches: the lists given replace the stored ones.
        sqlx::query(
            "DELETE FROM person_relations pr USING (
                 SELECT DISTINCT person_id, kind FROM import_relations
                 WHERE kind IN ('team_leader', 'coach')) r
             WHERE pr.person_id = r.person_id AND pr.kind = r.kind",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO person_relations (person_id, kind, related_id)
             SELECT DISTINCT person_id, kind, related_id FROM import_relations
             WHERE kind IN ('team_leader', 'coach') AND related_id IS NOT NULL
             ON CONFLICT DO NOTHING",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("DROP TABLE import_relations")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        errors.sort_by_key(|e| e.row);
        Ok((self.counts, errors))
    }
}

/// Splits off the rows that repeat a person (or an e-mail) seen earlier in the same batch;
/// rows with neither key are refused here.
fn split_repeats(
    rows: Vec<ImportPerson>,
    errors: &mut Vec<RowError>,
) -> (Vec<ImportPerson>, Vec<ImportPerson>) {
    let mut keys = std::collections::HashSet::with_capacity(rows.len());
    let mut emails = std::collections::HashSet::with_capacity(rows.len());
    let (mut now, mut later) = (Vec::with_capacity(rows.len()), Vec::new());
    for r in rows {
        let Some(key) = r.key() else {
            errors.push(RowError {
                row: r.row,
                field: None,
                message: "a row needs an e-mail or an external id".into(),
            });
            continue;
        };
        let email = r.email.as_ref().map(|e| e.to_lowercase());
        let repeat = keys.contains(&key) || email.as_ref().is_some_and(|e| emails.contains(e));
        if repeat {
            later.push(r);
        } else {
            keys.insert(key);
            if let Some(e) = email {
                emails.insert(e);
            }
            now.push(r);
        }
    }
    (now, later)
}
