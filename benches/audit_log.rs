//! Audit log at scale: a filtered DPO query's first page and `audit verify`
//! throughput on a large, correctly chained log.
//!
//! Generates `BRDO_BENCH_RECORDS` records (default 10 000 000) with a
//! realistic mix of partners, officers and actions, their index rows, the
//! Merkle nodes and a signed checkpoint, straight into SQLite (generation is
//! not what is measured). Then measures, each against a baseline taken in
//! the same run on the same file:
//! - first page of filtered queries vs. a primary-key point lookup;
//! - `brdo audit verify` records/s vs. merely reading every row.
//!
//! `BRDO_BENCH_DIR=DIR` keeps (and reuses) the generated log. Run with
//! `cargo bench --bench audit_log`. Not a test: nothing here asserts a time.

// A benchmark reads top to bottom as one script: bench code is exempt from the length limit.
#![allow(clippy::too_many_lines)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use brdo::audit::merkle::{CompactRange, leaf_hash};
use brdo::audit::record::{Action, Actor, GENESIS_HASH, Outcome, RecordDraft};
use brdo::crypto::jose::{Checkpoint, CheckpointSigner};
use brdo::store::{AuditFilter, Store, StoreOptions};
use sqlx::Executor;

const PARTNERS: &[&str] = &[
    "AL-CTD", "BA-SIPA", "XK-CTD", "ME-MOI", "MK-MOI", "RS-MOI", "EU-ECTC",
];
const BATCH: usize = 500;

/// A tiny deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

fn draft(rng: &mut Rng, i: u64, start_ms: i64) -> RecordDraft {
    let me = rng.pick(PARTNERS);
    let mut other = rng.pick(PARTNERS);
    if other == me {
        other =
            PARTNERS[(PARTNERS.iter().position(|p| *p == me).unwrap_or(0) + 1) % PARTNERS.len()];
    }
    let roll = rng.next() % 100;
    let (action, outcome, justification) = match roll {
        0..20 => (Action::Collect, Outcome::Allowed, None),
        20..50 => (Action::List, Outcome::Allowed, None),
        50..70 => (
            Action::Consult,
            Outcome::Allowed,
            Some(format!("Case {}-2026-{:04}", me, rng.next() % 9000)),
        ),
        70..85 => (Action::Acknowledge, Outcome::Allowed, None),
        85..90 => (Action::Status, Outcome::Allowed, None),
        90..95 => (Action::Deny, Outcome::Denied, None),
        _ => (Action::AuditQuery, Outcome::Allowed, None),
    };
    let message = (action != Action::List && action != Action::AuditQuery).then(|| {
        format!(
            "019{:05x}-{:04x}-7{:03x}-8{:03x}-{:012x}",
            i >> 20,
            i & 0xffff,
            rng.next() % 4096,
            rng.next() % 4096,
            i
        )
    });
    let at_ms = start_ms + (i as i64) * 3; // ~330 records a second, strictly ordered
    RecordDraft {
        at: brdo::domain::time::ms_to_text(at_ms),
        actor: Actor {
            role: "partner".into(),
            id: Some(me.into()),
            officer: Some(format!("officer.{:03}", rng.next() % 500)),
            cert_serial: Some(format!(
                "{:032x}",
                PARTNERS.iter().position(|p| *p == me).unwrap_or(0) + 1
            )),
        },
        action,
        message_id: message,
        counterparts: vec![other.into()],
        outcome,
        code: (outcome == Outcome::Denied).then(|| "no_legal_basis".into()),
        justification,
        request_id: Some(format!("{:032x}", i)),
        node: None,
        details: None,
    }
}

async fn generate(dir: &Path, n: u64) -> std::path::PathBuf {
    let db = dir.join("brdo.db");
    let pki = dir.join("pki");
    if !pki.join("ca.key").exists() {
        brdo::pki::init(&pki, &[], time::OffsetDateTime::now_utc()).expect("pki");
    }
    let url = format!("sqlite://{}", db.display());
    let store = Store::open(&StoreOptions {
        url: url.clone(),
        node: None,
        read_connections: 1,
        checkpoints: Default::default(),
    })
    .await
    .expect("store");
    let existing = store.audit_size().await.expect("size");
    store.close().await;
    drop(store);
    if existing >= n {
        println!("reusing {} records in {}", existing, db.display());
        return pki;
    }
    assert_eq!(
        existing,
        0,
        "a partly generated log; remove {} and run again",
        db.display()
    );
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("pool");
    // Generation only: the measured paths run with the gateway's settings.
    pool.execute("PRAGMA synchronous = OFF")
        .await
        .expect("pragma");
    pool.execute("PRAGMA journal_mode = WAL")
        .await
        .expect("pragma");
    pool.execute("DROP TRIGGER audit_log_no_update")
        .await
        .expect("drop");
    let started = Instant::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let start_ms = 1_790_000_000_000;
    let mut prev = GENESIS_HASH.to_owned();
    let mut tree = CompactRange::new();
    let mut nodes: Vec<(u32, u64, [u8; 32])> = Vec::new();
    let mut seq = 1u64;
    while seq <= n {
        let mut tx = pool.begin().await.expect("tx");
        let end = (seq + 50_000).min(n + 1);
        while seq < end {
            let upto = (seq + BATCH as u64).min(end);
            let mut log = String::from(
                "INSERT INTO audit_log (seq, at, actor_role, actor_id, actor_officer, actor_cert_serial, action, message_id, counterparts, outcome, code, justification, request_id, node, details, reduced, prev_hash, hash) VALUES ",
            );
            let mut parties = String::from("INSERT INTO audit_parties (partner, seq) VALUES ");
            let mut messages = String::from("INSERT INTO audit_messages (message_id, seq) VALUES ");
            let mut any_message = false;
            let q = |s: &Option<String>| {
                s.as_ref().map_or("NULL".to_owned(), |v| {
                    format!("'{}'", v.replace('\'', "''"))
                })
            };
            for i in seq..upto {
                let d = draft(&mut rng, i, start_ms);
                let rec = d.chain(i, &prev).expect("chain");
                prev.clone_from(&rec.hash);
                let bytes = rec.hash_bytes().expect("hash");
                tree.append_reporting(&leaf_hash(&bytes), |level, idx, h| {
                    if level % 4 == 0 {
                        nodes.push((level, idx, *h));
                    }
                })
                .expect("append");
                let d = &rec.draft;
                if i > seq {
                    log.push(',');
                    parties.push(',');
                }
                log.push_str(&format!(
                    "({i},'{}','partner',{},{},{},'{}',{},'{}','{}',{},{},{},NULL,NULL,0,'{}','{}')",
                    d.at,
                    q(&d.actor.id),
                    q(&d.actor.officer),
                    q(&d.actor.cert_serial),
                    d.action.as_str(),
                    q(&d.message_id),
                    serde_json::to_string(&d.counterparts).expect("json"),
                    d.outcome.as_str(),
                    q(&d.code),
                    q(&d.justification),
                    q(&d.request_id),
                    rec.prev_hash,
                    rec.hash
                ));
                parties.push_str(&format!(
                    "('{}',{i}),('{}',{i})",
                    d.actor.id.as_deref().unwrap_or_default(),
                    d.counterparts[0]
                ));
                if let Some(m) = &d.message_id {
                    if any_message {
                        messages.push(',');
                    }
                    messages.push_str(&format!("('{m}',{i})"));
                    any_message = true;
                }
            }
            tx.execute(sqlx::AssertSqlSafe(log))
                .await
                .expect("insert log");
            tx.execute(sqlx::AssertSqlSafe(parties))
                .await
                .expect("insert parties");
            if any_message {
                tx.execute(sqlx::AssertSqlSafe(messages))
                    .await
                    .expect("insert messages");
            }
            seq = upto;
        }
        for chunk in nodes.chunks(500) {
            let values: Vec<String> = chunk
                .iter()
                .map(|(l, i, h)| format!("({l},{i},X'{}')", hex::encode(h)))
                .collect();
            tx.execute(sqlx::AssertSqlSafe(format!(
                "INSERT INTO merkle_nodes (level, idx, hash) VALUES {}",
                values.join(",")
            )))
            .await
            .expect("nodes");
        }
        nodes.clear();
        tx.commit().await.expect("commit");
        if seq % 1_000_000 < 50_001 {
            println!(
                "  generated {} records ({:.0} s)",
                seq - 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    sqlx::query("INSERT INTO merkle_frontier (id, size, hashes) VALUES (1, $1, $2)")
        .bind(n as i64)
        .bind(tree.hashes().concat())
        .execute(&pool)
        .await
        .expect("frontier");
    let signer = CheckpointSigner::from_pem_file(&pki.join("audit-signing.key")).expect("signer");
    let cp = Checkpoint {
        tree_size: n,
        root_hash: hex::encode(tree.root()),
        at: brdo::domain::time::ms_to_text(start_ms + n as i64 * 3),
    };
    sqlx::query(
        "INSERT INTO audit_checkpoints (tree_size, root_hash, at, jws) VALUES ($1, $2, $3, $4)",
    )
    .bind(n as i64)
    .bind(cp.root_hash.clone())
    .bind(cp.at.clone())
    .bind(signer.sign(&cp).expect("sign"))
    .execute(&pool)
    .await
    .expect("checkpoint");
    pool.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        .await
        .expect("checkpoint wal");
    pool.execute("ANALYZE").await.expect("analyze");
    pool.close().await;
    println!(
        "generated {n} records in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    pki
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn first_page(store: &Store, f: &AuditFilter, scope: Option<&str>) -> (Duration, usize) {
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..7 {
        let t = Instant::now();
        n = store.audit_query(f, scope).await.expect("query").len();
        times.push(t.elapsed());
    }
    (median(times), n)
}

#[tokio::main]
async fn main() {
    let n: u64 = std::env::var("BRDO_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let keep = std::env::var_os("BRDO_BENCH_DIR").map(std::path::PathBuf::from);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = keep.unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir).expect("dir");
    let pki = generate(&dir, n).await;
    let db = dir.join("brdo.db");
    println!(
        "log: {n} records, {:.1} GiB on disk",
        std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) as f64 / (1u64 << 30) as f64
    );

    let store = Store::open(&StoreOptions {
        url: format!("sqlite://{}", db.display()),
        node: None,
        read_connections: 2,
        checkpoints: Default::default(),
    })
    .await
    .expect("store");
    // Baseline: one primary-key lookup, through the same store and driver.
    let mut base = Vec::new();
    for i in 0..7 {
        let t = Instant::now();
        store.audit_record(n / 2 + i).await.expect("lookup");
        base.push(t.elapsed());
    }
    let base = median(base);
    println!(
        "\nbaseline: primary-key lookup of one record {:.2} ms",
        base.as_secs_f64() * 1e3
    );
    let page = |f: AuditFilter| AuditFilter { limit: 100, ..f };
    let middle = brdo::domain::time::ms_to_text(1_790_000_000_000 + (n as i64 / 2) * 3);
    let cases: Vec<(&str, AuditFilter, Option<&str>)> = vec![
        (
            "newest 100 (order=desc)",
            page(AuditFilter {
                descending: true,
                ..Default::default()
            }),
            None,
        ),
        (
            "partner DPO RS-MOI, newest",
            page(AuditFilter {
                descending: true,
                ..Default::default()
            }),
            Some("RS-MOI"),
        ),
        (
            "partner=XK-CTD and action=consult",
            page(AuditFilter {
                partner: Some("XK-CTD".into()),
                action: Some("consult".into()),
                ..Default::default()
            }),
            None,
        ),
        (
            "officer=officer.123",
            page(AuditFilter {
                officer: Some("officer.123".into()),
                ..Default::default()
            }),
            None,
        ),
        (
            "outcome=denied from the middle",
            page(AuditFilter {
                outcome: Some("denied".into()),
                from: Some(middle.clone()),
                ..Default::default()
            }),
            None,
        ),
        (
            "partner DPO AL-CTD, action=deny, from the middle",
            page(AuditFilter {
                action: Some("deny".into()),
                from: Some(middle),
                ..Default::default()
            }),
            Some("AL-CTD"),
        ),
        (
            "cursor deep in the log (after = n/2)",
            page(AuditFilter {
                after: Some(n / 2),
                ..Default::default()
            }),
            None,
        ),
    ];
    println!("first page of filtered queries (median of 7):");
    for (name, f, scope) in &cases {
        let (t, rows) = first_page(&store, f, *scope).await;
        println!(
            "  {name:<48} {:>7.2} ms  {rows:>3} rows  ({:.1} x the baseline lookup)",
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() / base.as_secs_f64()
        );
    }
    let msg = store
        .audit_query(
            &page(AuditFilter {
                action: Some("consult".into()),
                ..Default::default()
            }),
            None,
        )
        .await
        .expect("q");
    if let Some(m) = msg.first().and_then(|(r, _)| r.draft.message_id.clone()) {
        let (t, rows) = first_page(
            &store,
            &page(AuditFilter {
                message: Some(m),
                ..Default::default()
            }),
            None,
        )
        .await;
        println!(
            "  {:<48} {:>7.2} ms  {rows:>3} rows  ({:.1} x)",
            "message=<one id>",
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() / base.as_secs_f64()
        );
    }

    // Baseline for verify: reading every record through the same bulk
    // reader into owned records, no checks.
    let bulk = store
        .bulk_reader(&format!("sqlite://{}", db.display()))
        .await
        .expect("bulk");
    let t = Instant::now();
    let mut after = 0;
    let mut read = 0u64;
    loop {
        let p = bulk.page(after, 20_000).await.expect("page");
        let Some((last, _)) = p.last() else { break };
        after = last.seq;
        read += p.len() as u64;
    }
    let read_rate = read as f64 / t.elapsed().as_secs_f64();
    store.close().await;
    println!(
        "\nbaseline: reading all {read} records {:.0} records/s",
        read_rate
    );

    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"sqlite://{}\"\n[audit]\npublic_key = \"{}\"\n",
            db.display(),
            pki.join("audit-signing.pub").display()
        ),
    )
    .expect("config");
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_brdo"))
        .args([
            "audit",
            "verify",
            "--config",
            config.to_str().expect("utf8"),
        ])
        .output()
        .expect("verify");
    let secs = t.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "brdo audit verify: {} records in {secs:.1} s = {:.0} records/s ({:.2} x reading alone)",
        n,
        n as f64 / secs,
        n as f64 / secs / read_rate
    );
    println!("  {}", stdout.trim());
}
