//! `sip.tls*`: the files are read at load time and each problem names its key.

use super::*;

/// A directory of PEM files for one test, removed afterwards.
struct Files(std::path::PathBuf);

impl Files {
    fn new(test: &str) -> Files {
        let dir = std::env::temp_dir().join(format!("siphon-config-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        std::fs::write(dir.join("cert.pem"), c.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), c.signing_key.serialize_pem()).unwrap();
        std::fs::write(dir.join("empty.pem"), "").unwrap();
        let sec1 = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        std::fs::write(dir.join("sec1.pem"), sec1).unwrap();
        Files(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn tls_listener_loads_with_readable_cert_and_key() {
    let f = Files::new("tls-ok");
    let text = format!(
        "[sip]\ntls = \"127.0.0.1:5061\"\ntls_cert = {:?}\ntls_key = {:?}\n\
         [sip.trunk]\nuri = \"sips:pbx.example.com\"\n",
        f.path("cert.pem"),
        f.path("key.pem")
    );
    let config = load(&text);
    assert_eq!(
        config.sip.tls.listen,
        Some("127.0.0.1:5061".parse().unwrap())
    );
    // Without tls_client_*, the listener's pair is the client certificate.
    let (cert, key) = config.sip.tls.client_files().unwrap();
    assert_eq!(
        (cert, key),
        (f.path("cert.pem").as_str(), f.path("key.pem").as_str())
    );
}

#[test]
fn tls_listener_needs_cert_and_key() {
    let errors = rejected("[sip]\ntls = \"127.0.0.1:5061\"\n");
    assert_eq!(
        reason(&errors, "sip.tls_cert"),
        "required while sip.tls is set"
    );
    assert_eq!(
        reason(&errors, "sip.tls_key"),
        "required while sip.tls is set"
    );
}

#[test]
fn missing_unreadable_or_wrong_files_name_their_key() {
    let f = Files::new("tls-bad");
    let text = format!(
        "[sip]\ntls = \"127.0.0.1:5061\"\ntls_cert = {:?}\ntls_key = {:?}\ntls_ca = {:?}\n\
         tls_client_cert = {:?}\n",
        f.path("missing.pem"),
        f.path("cert.pem"),
        f.path("empty.pem"),
        f.0.to_string_lossy(),
    );
    let errors = rejected(&text);
    assert!(
        reason(&errors, "sip.tls_cert").contains("cannot read"),
        "{errors}"
    );
    assert!(
        reason(&errors, "sip.tls_key").contains("no PRIVATE KEY"),
        "{errors}"
    );
    assert!(
        reason(&errors, "sip.tls_ca").contains("no CERTIFICATE"),
        "{errors}"
    );
    // A directory cannot be read as a file.
    assert!(
        reason(&errors, "sip.tls_client_cert").contains("cannot read"),
        "{errors}"
    );
    assert_eq!(
        reason(&errors, "sip.tls_client_key"),
        "required with sip.tls_client_cert"
    );
}

#[test]
fn tls_trunk_or_registrar_without_a_listener_is_an_error() {
    let errors = rejected(
        "[sip.trunk]\nuri = \"sip:pbx.example.com;transport=tls\"\n\
         [sip.client_register]\nregistrar = \"sips:reg.example.com\"\n",
    );
    assert!(
        reason(&errors, "sip.trunk.uri").contains("set sip.tls"),
        "{errors}"
    );
    assert!(
        reason(&errors, "sip.client_register.registrar").contains("set sip.tls"),
        "{errors}"
    );
}

#[test]
fn tls_alone_is_enough_of_a_sip_listener() {
    let f = Files::new("tls-only");
    let text = format!(
        "[sip]\nudp = \"\"\ntcp = \"\"\ntls = \"127.0.0.1:5061\"\ntls_cert = {:?}\ntls_key = {:?}\n",
        f.path("cert.pem"),
        f.path("key.pem")
    );
    assert_eq!(load(&text).sip_public_ip(), IpAddr::from([127, 0, 0, 1]));
}

#[test]
fn a_client_key_in_sec1_form_is_refused_with_the_fix() {
    let f = Files::new("tls-sec1");
    let text = format!(
        "[sip]\ntls_client_cert = {:?}\ntls_client_key = {:?}\n",
        f.path("cert.pem"),
        f.path("sec1.pem")
    );
    let errors = rejected(&text);
    assert!(
        reason(&errors, "sip.tls_client_key").contains("PKCS#8"),
        "{errors}"
    );
    assert_eq!(keys(&errors), ["sip.tls_client_key"]);
}
