//! Certificate serial numbers: generation and the one canonical text form.

use super::PkiError;

/// The canonical text form of a serial: lowercase hex of the big-endian bytes
/// without leading zero bytes (`"00"` for zero).
///
/// Why one function: the CLI, `list`, `revoke` and the gateway's CRL check must
/// compare serials as strings, and DER adds a leading 0x00 to serials whose top
/// bit is set, so the raw bytes differ between encoders unless stripped here.
pub fn serial_hex(raw: &[u8]) -> String {
    let significant: Vec<u8> = raw.iter().copied().skip_while(|b| *b == 0).collect();
    if significant.is_empty() {
        return "00".to_owned();
    }
    hex::encode(significant)
}

/// Normalises a serial typed by an operator (any case, optional `:` separators,
/// optional `0x`), so `4A:0B:…` as printed by openssl is accepted.
pub(crate) fn parse_serial_input(input: &str) -> Result<String, PkiError> {
    let invalid = || PkiError::InvalidSerial {
        value: input.to_owned(),
    };
    let trimmed = input.trim();
    let trimmed = trimmed
        .strip_prefix("0x")
        .or_else(|| trimmed.strip_prefix("0X"))
        .unwrap_or(trimmed);
    let mut digits: String = trimmed.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 60 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    if digits.len() % 2 == 1 {
        digits.insert(0, '0');
    }
    let bytes = hex::decode(&digits).map_err(|_| invalid())?;
    Ok(serial_hex(&bytes))
}

/// A random, positive, exactly 16-byte serial (RFC 5280 asks for unpredictable serials).
///
/// The top bit is cleared so DER needs no sign byte, and the first byte is
/// never zero, so every serial has the same 32-character hex form.
pub(crate) fn random_serial() -> Result<[u8; 16], PkiError> {
    let mut serial = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial)
        .map_err(|e| PkiError::crypto("generate a certificate serial number", e))?;
    serial[0] &= 0x7f;
    if serial[0] == 0 {
        serial[0] = 0x01;
    }
    Ok(serial)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_leading_zero_bytes_only() {
        assert_eq!(serial_hex(&[0x00, 0x80, 0x01]), "8001");
        assert_eq!(serial_hex(&[0x00, 0x00, 0x0a]), "0a");
        assert_eq!(serial_hex(&[0x7f, 0x00]), "7f00");
        assert_eq!(serial_hex(&[]), "00");
        assert_eq!(serial_hex(&[0, 0]), "00");
    }

    #[test]
    fn parses_operator_input() {
        assert_eq!(parse_serial_input("4A:0B").unwrap(), "4a0b");
        assert_eq!(parse_serial_input(" 0x00ff ").unwrap(), "ff");
        assert_eq!(parse_serial_input("abc").unwrap(), "0abc");
        assert!(parse_serial_input("").is_err());
        assert!(parse_serial_input("xyz").is_err());
        assert!(parse_serial_input(&"a".repeat(61)).is_err());
    }

    #[test]
    fn random_serials_are_positive_16_bytes_and_differ() {
        let a = random_serial().unwrap();
        let b = random_serial().unwrap();
        assert_ne!(a, b);
        for s in [a, b] {
            assert!(s[0] != 0 && s[0] < 0x80);
            assert_eq!(serial_hex(&s).len(), 32);
        }
    }
}
