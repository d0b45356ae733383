//! How many SMS segments a body costs: GSM-7 packs 160 characters in one segment (153 per
//! segment when concatenated, the rest holds the joining header); any character outside
//! GSM-7 forces UCS-2, 70 per segment (67 concatenated). Extension characters (`{`, `€`,
//! ...) take two GSM-7 septets.

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENSION: &str = "^{}\\[~]|€\u{000C}";

/// The encoding a body needs and its length in that encoding's units.
fn units(body: &str) -> (bool, usize) {
    let mut septets = 0;
    for c in body.chars() {
        if GSM7_BASIC.contains(c) {
            septets += 1;
        } else if GSM7_EXTENSION.contains(c) {
            septets += 2;
        } else {
            // UCS-2 counts UTF-16 code units: an emoji is two.
            return (false, body.encode_utf16().count());
        }
    }
    (true, septets)
}

/// The encoding an SMS body is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmsEncoding {
    /// 160 characters in one segment, 153 per segment when concatenated.
    Gsm7,
    /// Any character outside GSM-7: 70 in one segment, 67 concatenated.
    Ucs2,
}

/// The encoding the body needs.
pub fn sms_encoding(body: &str) -> SmsEncoding {
    if units(body).0 {
        SmsEncoding::Gsm7
    } else {
        SmsEncoding::Ucs2
    }
}

/// Segments the body is billed and rate-limited as (at least 1).
pub fn sms_segments(body: &str) -> u32 {
    let (gsm7, len) = units(body);
    let (single, multi) = if gsm7 { (160, 153) } else { (70, 67) };
    let segments = if len <= single {
        1
    } else {
        len.div_ceil(multi)
    };
    segments as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_boundaries() {
        assert_eq!(sms_segments(""), 1);
        assert_eq!(sms_segments(&"a".repeat(160)), 1);
        assert_eq!(sms_segments(&"a".repeat(161)), 2);
        assert_eq!(sms_segments(&"a".repeat(306)), 2);
        assert_eq!(sms_segments(&"a".repeat(307)), 3);
        // Extension characters take two septets.
        assert_eq!(sms_segments(&"€".repeat(80)), 1);
        assert_eq!(sms_segments(&"€".repeat(81)), 2);
        assert_eq!(sms_encoding("€ and é"), SmsEncoding::Gsm7);
    }

    #[test]
    fn ucs2_boundaries() {
        assert_eq!(sms_segments(&"é".repeat(160)), 1, "é is GSM-7");
        assert_eq!(sms_segments(&"ł".repeat(70)), 1);
        assert_eq!(sms_segments(&"ł".repeat(71)), 2);
        assert_eq!(sms_segments(&"ł".repeat(134)), 2);
        assert_eq!(sms_segments(&"ł".repeat(135)), 3);
        assert_eq!(sms_encoding("ł"), SmsEncoding::Ucs2);
    }
}
