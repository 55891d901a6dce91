//! `stockflight-server` through the real client stacks: the Arrow Flight SQL JDBC driver (from a
//! small Java program, as DBeaver or Tableau's JDBC path use it) and grpcurl (operators).
//! The Python ADBC tests live in tests/python/test_server_adbc.py.

#[path = "support/server.rs"]
mod support;

use std::process::Command;

use stockflight_tests::require;
use support::*;

fn grpcurl(server: &Server, args: &[&str]) -> String {
    let output = Command::new(require("STOCKFLIGHT_GRPCURL"))
        .arg("-plaintext")
        .args(args.iter().take_while(|a| !a.starts_with('@')))
        .arg(&server.addr)
        .args(args.iter().filter_map(|a| a.strip_prefix('@')))
        .output()
        .expect("run grpcurl");
    let text = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "grpcurl {args:?}: {text}");
    text
}

#[test]
fn grpcurl_lists_describes_and_checks_health() {
    let dir = tempfile::tempdir().unwrap();
    publish(dir.path(), "r1", 0);
    let server = Server::start(dir.path(), &[]);

    let services = grpcurl(&server, &["@list"]);
    for service in ["arrow.flight.protocol.FlightService", "grpc.health.v1.Health"] {
        assert!(
            services.lines().any(|l| l.trim() == service),
            "{service} not listed: {services}"
        );
    }
    let described = grpcurl(&server, &["@describe", "@arrow.flight.protocol.FlightService"]);
    for rpc in ["rpc Handshake", "rpc GetFlightInfo", "rpc DoGet", "rpc DoAction"] {
        assert!(described.contains(rpc), "{rpc} missing: {described}");
    }
    let overall = grpcurl(&server, &["@grpc.health.v1.Health/Check"]);
    assert!(overall.contains("\"SERVING\""), "{overall}");
    let flight = grpcurl(
        &server,
        &[
            "-d",
            r#"{"service":"arrow.flight.protocol.FlightService"}"#,
            "@grpc.health.v1.Health/Check",
        ],
    );
    assert!(flight.contains("\"SERVING\""), "{flight}");
}

#[test]
fn jdbc_driver_reads_metadata_every_type_and_prepared_statements() {
    let dir = tempfile::tempdir().unwrap();
    publish(dir.path(), "r1", 0);
    let users = format!("bi:{}", hash_password("tableau-pass"));
    let server = Server::start(dir.path(), &["--auth-users", &users]);

    let mut java = Command::new("java");
    java.args(require("STOCKFLIGHT_JAVA_OPTS").split_whitespace());
    let output = java
        .args(["-Duser.timezone=UTC", "-cp", &require("STOCKFLIGHT_JDBC_CLASSPATH")])
        .args(["io.stockflight.clients.ServerCheck", &server.addr, "bi", "tableau-pass"])
        .output()
        .expect("run java");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        output.status.success(),
        "ServerCheck failed:\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log_text()
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let has = |line: &str| lines.contains(&line);

    assert!(
        lines.iter().any(|l| l.starts_with("AUTH_REFUSED")),
        "a wrong password was accepted:\n{stdout}"
    );
    assert!(has("CATALOG stockflight"), "{stdout}");
    assert!(has("SCHEMA stockflight public"), "{stdout}");
    for table in ["availability_snapshot", "items", "nodes"] {
        assert!(has(&format!("TABLE public {table} TABLE")), "{table}:\n{stdout}");
    }
    for column in ["item_id", "available_qty", "updated_at", "region"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("COLUMN availability_snapshot {column} "))),
            "{column}:\n{stdout}"
        );
    }
    // Driver 18.3 answers getTypeInfo itself (Avatica's empty default, it never sends
    // GetXdbcTypeInfo); the call must still work. GetXdbcTypeInfo is checked in server_flight.
    assert!(lines.iter().any(|l| l.starts_with("TYPEINFO ")), "{stdout}");
    assert!(has("PK items item_id"), "{stdout}");

    // Every column type of one row, read through ResultSet (item 1 at node 2, version 0).
    let updated = chrono::DateTime::from_timestamp(1_764_000_000 + 1002, 0).unwrap();
    let expected = [
        "VALUE item_id String sku-0001".to_string(),
        "VALUE node_id String node-002".to_string(),
        format!("VALUE available_qty Long {}", qty(0, 1, 2)),
        format!("VALUE reserved_qty Integer {}", reserved(1, 2)),
        format!("VALUE in_stock Boolean {}", qty(0, 1, 2) > 0),
        format!(
            "VALUE as_of Date {}",
            chrono::NaiveDate::from_num_days_from_ce_opt(719_163 + 20_002).unwrap()
        ),
        format!("VALUE updated_at Timestamp {}.0", updated.format("%Y-%m-%d %H:%M:%S")),
        format!("VALUE region String {}", region(2)),
        format!("VALUE qty_double Double {:?}", qty(0, 1, 2) as f64),
    ];
    for line in &expected {
        assert!(has(line), "missing `{line}`:\n{stdout}");
    }
    let toys = (0..ITEMS).filter(|i| DEPARTMENTS[i % 4] == "toys").count();
    assert!(has(&format!("PREPARED_COUNT {toys}")), "{stdout}");
}

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA.
fn certificates(dir: &std::path::Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=stockflight-test-ca",
        ],
    );
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n").unwrap();
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    for who in ["server", "client"] {
        let key = format!("{who}.key");
        let csr = format!("{who}.csr");
        let pem = format!("{who}.pem");
        let ext = format!("{who}.ext");
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={who}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
    }
}

#[test]
fn tls_with_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    publish(dir.path(), "r1", 0);
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let path = |f: &str| certs.path().join(f).to_string_lossy().into_owned();
    let server = Server::start(
        dir.path(),
        &[
            "--tls-cert",
            &path("server.pem"),
            "--tls-key",
            &path("server.key"),
            "--tls-client-ca",
            &path("ca.pem"),
        ],
    );
    let run = |extra: &[String]| {
        Command::new(require("STOCKFLIGHT_GRPCURL"))
            .args(["-cacert", &path("ca.pem")])
            .args(extra)
            .arg(&server.addr)
            .arg("grpc.health.v1.Health/Check")
            .output()
            .expect("run grpcurl")
    };
    let with_cert = run(&["-cert".into(), path("client.pem"), "-key".into(), path("client.key")]);
    let text = String::from_utf8_lossy(&with_cert.stdout).to_string() + &String::from_utf8_lossy(&with_cert.stderr);
    assert!(
        with_cert.status.success() && text.contains("SERVING"),
        "mTLS call failed: {text}"
    );

    let without_cert = run(&[]);
    assert!(
        !without_cert.status.success(),
        "a client without a certificate was let in"
    );
    let plaintext = Command::new(require("STOCKFLIGHT_GRPCURL"))
        .args(["-plaintext", &server.addr, "grpc.health.v1.Health/Check"])
        .output()
        .unwrap();
    assert!(!plaintext.status.success(), "a plaintext client was let in");
}
