//! Signing and verification cost per scheme, on a realistic 1 KiB event.
//!
//! `cargo bench -p hookgate-protocol --bench signing`

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hookgate_protocol::signing::{cobo_v1, cobo_v2, standard};

fn body() -> Vec<u8> {
    let sample = hookgate_protocol::samples::sample_data(
        hookgate_protocol::catalogue::find("wallets.transaction.updated").expect("core type"),
    );
    let mut body = serde_json::to_vec(&sample).expect("serialises");
    body.resize(1024, b' ');
    body
}

fn cobo_v2_scheme(c: &mut Criterion) {
    let body = body();
    let signer = cobo_v2::Signer::generate();
    let key = cobo_v2::parse_public_key(&signer.public_key_hex()).expect("key");
    let signature = signer.sign(&body, "1741687575067");

    let mut group = c.benchmark_group("cobo_v2_ed25519");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign", |b| {
        b.iter(|| signer.sign(black_box(&body), "1741687575067"))
    });
    group.bench_function("verify", |b| {
        b.iter(|| cobo_v2::verify(&key, black_box(&body), "1741687575067", &signature))
    });
    group.finish();
}

fn cobo_v1_scheme(c: &mut Criterion) {
    let body = body();
    let signer = cobo_v1::Signer::generate();
    let key = cobo_v1::parse_public_key(&signer.public_key_hex()).expect("key");
    let signature = signer.sign(&body, "1741687575067");

    let mut group = c.benchmark_group("cobo_v1_secp256k1");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign", |b| {
        b.iter(|| signer.sign(black_box(&body), "1741687575067"))
    });
    group.bench_function("verify", |b| {
        b.iter(|| cobo_v1::verify(&key, black_box(&body), "1741687575067", &signature))
    });
    group.finish();
}

fn standard_scheme(c: &mut Criterion) {
    let body = body();
    let secret = standard::Secret::parse("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        .expect("secret");
    let header = secret.sign("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "1741687575", &body);
    let key = standard::VerifyingKey::Secret(secret.clone());

    let mut group = c.benchmark_group("standard_webhooks_hmac");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign", |b| {
        b.iter(|| {
            secret.sign(
                "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
                "1741687575",
                black_box(&body),
            )
        })
    });
    group.bench_function("verify", |b| {
        b.iter(|| {
            standard::verify(
                &key,
                "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
                "1741687575",
                black_box(&body),
                &header,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, cobo_v2_scheme, cobo_v1_scheme, standard_scheme);
criterion_main!(benches);
