//! Authentication of `stockflight-server`: Basic credentials for Bearer tokens that expire,
//! static tokens, and the refusal to serve an open address without authentication.

#[path = "support/server.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use support::*;
use tonic::Code;

#[tokio::test]
async fn basic_login_gives_an_expiring_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    publish(dir.path(), "r1", 0);
    let users = format!("alice:{}", hash_password("correct horse"));
    let server = Server::start(
        dir.path(),
        &[
            "--auth-users",
            &users,
            "--auth-tokens",
            "static-token-1",
            "--auth-token-ttl-secs",
            "3",
        ],
    );
    let mut client = server.client().await;

    // No credentials at all.
    let err = client.query("SELECT 1").await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err}");

    // Wrong password, unknown user.
    assert_eq!(
        client.login("alice", "wrong").await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        client.login("mallory", "correct horse").await.unwrap_err().code(),
        Code::Unauthenticated
    );

    // The right one: a token that works.
    client.login("alice", "correct horse").await.unwrap();
    assert_eq!(
        scalar_i64(&client.query("SELECT count(*) FROM items").await.unwrap()),
        ITEMS as i64
    );

    // A forged token does not.
    let mut forged = server.client().await;
    forged.token = Some("not-a-token".into());
    assert_eq!(
        forged.query("SELECT 1").await.unwrap_err().code(),
        Code::Unauthenticated
    );

    // A static token works without Handshake.
    let mut static_client = server.client().await;
    static_client.token = Some("static-token-1".into());
    assert_eq!(
        scalar_i64(&static_client.query("SELECT count(*) FROM nodes").await.unwrap()),
        NODES as i64
    );

    // The handed-out token expires.
    let token = client.token.clone().unwrap();
    let expired = eventually(Duration::from_secs(20), || {
        let inner = client.inner.clone();
        let token = token.clone();
        async move {
            let mut c = Client { inner, token: Some(token) };
            matches!(c.query("SELECT 1").await, Err(e) if e.code() == Code::Unauthenticated && e.message().contains("expired"))
        }
    })
    .await;
    assert!(expired, "the token did not expire");
    // Logging in again works.
    client.login("alice", "correct horse").await.unwrap();
    assert!(client.query("SELECT 1").await.is_ok());
}

#[test]
fn open_address_without_auth_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(stockflight_tests::binary("stockflight-server"))
        .args(["--server-addr", "0.0.0.0:0", "--storage-url"])
        .arg(dir.path())
        .env_remove("STOCKFLIGHT_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("server.addr") && stderr.contains("authentication"),
        "{stderr}"
    );
}
