//! SRTP session key derivation (RFC 3711 section 4.3, RFC 6188 for AES-256).
//!
//! Runs once per context, so it may allocate; the per-packet path never calls it.

use rtc_crypto::{BlockCipherAlgorithm, CryptoError, RTCCrypto};

/// Key derivation labels (RFC 3711 section 4.3.1).
#[derive(Debug, Clone, Copy)]
pub(super) struct Labels {
    pub cipher: u8,
    pub auth: u8,
    pub salt: u8,
}

/// Labels for the SRTP session keys.
pub(super) const SRTP: Labels = Labels {
    cipher: 0x00,
    auth: 0x01,
    salt: 0x02,
};

/// Labels for the SRTCP session keys.
pub(super) const SRTCP: Labels = Labels {
    cipher: 0x03,
    auth: 0x04,
    salt: 0x05,
};

const BLOCK: usize = 16;
/// The PRF input holds a salt of at most 112 bits; bytes 14..16 count blocks.
const MAX_SALT: usize = 14;

/// Fills `out` with the AES-CM PRF output for `label` (RFC 3711 section 4.3.3).
///
/// The key derivation rate is always 0 in DTLS-SRTP (RFC 5764 section 4.1.2),
/// so `r = index DIV kdr` is 0 and the PRF input is just the salt with the
/// label XORed into byte 7. A 96-bit GCM salt (RFC 7714 section 11) is
/// zero-padded on the right. AES-128 or AES-256 follows the master key length.
pub(super) fn derive(
    crypto: &dyn RTCCrypto,
    master_key: &[u8],
    master_salt: &[u8],
    label: u8,
    out: &mut [u8],
) -> Result<(), CryptoError> {
    let algorithm = match master_key.len() {
        16 => BlockCipherAlgorithm::Aes128,
        32 => BlockCipherAlgorithm::Aes256,
        actual => {
            return Err(CryptoError::InvalidKeyLength {
                expected: 16,
                actual,
            })
        }
    };
    if master_salt.len() > MAX_SALT {
        return Err(CryptoError::InvalidNonceLength {
            expected: MAX_SALT,
            actual: master_salt.len(),
        });
    }
    let mut x = [0u8; BLOCK];
    x[..master_salt.len()].copy_from_slice(master_salt);
    x[7] ^= label;
    for (counter, chunk) in out.chunks_mut(BLOCK).enumerate() {
        let mut block = x;
        let counter = u16::try_from(counter).map_err(|_| CryptoError::OutputTooSmall {
            required: BLOCK,
            actual: 0,
        })?;
        block[MAX_SALT..].copy_from_slice(&counter.to_be_bytes());
        crypto.block_encrypt(algorithm, master_key, &mut block)?;
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn run(key: &[u8], salt: &[u8], label: u8, len: usize) -> Vec<u8> {
        let provider = rtc_crypto::default_provider().expect("provider");
        let mut out = vec![0u8; len];
        derive(provider.crypto(), key, salt, label, &mut out).expect("derive");
        out
    }

    #[test]
    fn rfc3711_appendix_b3_vectors() {
        let key = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
        let salt = hex("0EC675AD498AFEEBB6960B3AABE6");
        assert_eq!(
            run(&key, &salt, SRTP.cipher, 16),
            hex("C61E7A93744F39EE10734AFE3FF7A087")
        );
        assert_eq!(
            run(&key, &salt, SRTP.salt, 14),
            hex("30CBBC08863D8C85D49DB34A9AE1")
        );
        // The appendix lists 94 bytes of auth-key PRF output; SHA1-80 keys use 20.
        let auth = hex(
            "CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
             E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25
             6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2",
        );
        assert_eq!(run(&key, &salt, SRTP.auth, auth.len()), auth);
    }

    #[test]
    fn rfc6188_aes256_vectors() {
        let key = hex("F0F04914B513F2763A1B1FA130F10E2998F6F6E43E4309D1E622A0E332B9F1B6");
        let salt = hex("3B04803DE51EE7C96423AB5B78D2");
        assert_eq!(
            run(&key, &salt, SRTP.cipher, 32),
            hex("5BA1064E30EC51613CAD926C5A28EF731EC7FB397F70A960653CAF06554CD8C4")
        );
        assert_eq!(
            run(&key, &salt, SRTP.salt, 14),
            hex("FA31791685CA444A9E07C6C64E93")
        );
        assert_eq!(
            run(&key, &salt, SRTP.auth, 20),
            hex("FD9C32D39ED5FBB5A9DC96B30818454D1313DC05")
        );
    }

    #[test]
    fn odd_lengths_are_errors_not_panics() {
        let provider = rtc_crypto::default_provider().expect("provider");
        let mut out = [0u8; 16];
        assert!(derive(provider.crypto(), &[0; 15], &[0; 14], 0, &mut out).is_err());
        assert!(derive(provider.crypto(), &[0; 16], &[0; 15], 0, &mut out).is_err());
    }
}
