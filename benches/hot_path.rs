//! The pure hot path of the processing stage, per event: decode → apply →
//! route → render, and the state encoding that RocksDB and the changelog
//! store. Run with `make bench-hot` (criterion); the README quotes the
//! events/s of `engine/process`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use postback::codec::event::{decode_event, encode_event_avro, encode_event_json};
use postback::config;
use postback::demo::generator::{Generator, Mix};
use postback::domain::binary::{decode_device, encode_device};
use postback::domain::engine::Engine;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

const EVENTS: usize = 100_000;

fn setup() -> (Arc<postback::domain::Rules>, Vec<postback::domain::Event>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/postback.toml");
    let config = config::load(&path).expect("example config loads");
    let events = Generator::new(&Mix { devices: 20_000, ..Mix::default() }).take(EVENTS).collect();
    (config.rules, events)
}

fn engine(c: &mut Criterion) {
    let (rules, events) = setup();
    let now = events.iter().map(|e| e.timestamp_ms).max().unwrap_or(0);
    let mut group = c.benchmark_group("engine");
    group.sample_size(10);
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("process", |b| {
        b.iter_batched(
            || Engine::new(Arc::clone(&rules)),
            |mut engine| {
                let mut jobs = 0usize;
                for e in &events {
                    jobs += engine.process(e, now).map_or(0, |j| j.len());
                }
                black_box(jobs)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn codecs(c: &mut Criterion) {
    let (rules, events) = setup();
    let json: Vec<Vec<u8>> = events.iter().take(10_000).map(encode_event_json).collect();
    let avro: Vec<Vec<u8>> = events.iter().take(10_000).map(encode_event_avro).collect();
    let mut engine = Engine::new(rules);
    let now = events.iter().map(|e| e.timestamp_ms).max().unwrap_or(0);
    for e in &events {
        let _ = engine.process(e, now);
    }
    let states: Vec<_> = engine.devices.values().take(10_000).cloned().collect();
    let encoded: Vec<Vec<u8>> = states
        .iter()
        .map(|s| {
            let mut v = Vec::new();
            encode_device(s, &mut v);
            v
        })
        .collect();

    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("decode_event_json", |b| b.iter(|| json.iter().filter_map(|r| decode_event(r).ok()).count()));
    group.bench_function("decode_event_avro", |b| b.iter(|| avro.iter().filter_map(|r| decode_event(r).ok()).count()));
    group.bench_function("encode_device_state", |b| {
        let mut buf = Vec::with_capacity(512);
        b.iter(|| {
            for s in &states {
                buf.clear();
                encode_device(s, &mut buf);
            }
            buf.len()
        })
    });
    group.bench_function("decode_device_state", |b| {
        b.iter(|| encoded.iter().filter_map(|v| decode_device(v).ok()).count())
    });
    group.finish();
}

criterion_group!(benches, engine, codecs);
criterion_main!(benches);
