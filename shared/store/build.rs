//! `sqlx::migrate!` embeds the migrations at compile time, but cargo does not watch the
//! folder for a proc macro: without this, a new migration file would not rebuild the crate.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
