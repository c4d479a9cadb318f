//! A batch over the item limit is refused without building its items: the parser's heap use
//! is measured with `dhat`'s test mode (the one test in this binary, since the allocator it
//! installs counts the whole process).

use shardkv::http::batch::{parse_mget, parse_mset, Encoding};
use shardkv::http::reply::ApiError;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Far below what building every item would take (each item is its own allocation).
const MAX_PEAK_BYTES: usize = 64 * 1024;
const MAX_ALLOCATIONS: u64 = 1_000;

#[test]
fn too_many_items_are_refused_without_building_them() {
    const ITEMS: usize = 200_000;
    // One-byte keys: each would be its own String if they were all built.
    let mget = format!(r#"{{"keys":[{}"a"]}}"#, r#""a","#.repeat(ITEMS - 1));
    let item = r#"{"key":"k","value":"v"},"#;
    let mset = format!(
        r#"{{"items":[{}{}]}}"#,
        item.repeat(ITEMS / 10 - 1),
        item.trim_end_matches(',')
    );

    let profiler = dhat::Profiler::builder().testing().build();
    let refused_mget = parse_mget(mget.as_bytes(), 5);
    let after_mget = dhat::HeapStats::get();
    drop(profiler);
    let profiler = dhat::Profiler::builder().testing().build();
    let refused_mset = parse_mset(mset.as_bytes(), Encoding::Utf8, 5);
    let after_mset = dhat::HeapStats::get();
    drop(profiler);

    match refused_mget {
        Err(ApiError::BatchTooLarge { len, max }) => assert_eq!((len, max), (ITEMS, 5)),
        other => panic!("expected BatchTooLarge, got {other:?}"),
    }
    match refused_mset {
        Err(ApiError::BatchTooLarge { len, max }) => assert_eq!((len, max), (ITEMS / 10, 5)),
        other => panic!("expected BatchTooLarge, got {other:?}"),
    }
    for (what, stats) in [("parse_mget", after_mget), ("parse_mset", after_mset)] {
        assert!(
            stats.max_bytes < MAX_PEAK_BYTES && stats.total_blocks < MAX_ALLOCATIONS,
            "{what} held {} bytes at its peak in {} allocations",
            stats.max_bytes,
            stats.total_blocks
        );
    }

    // At the limit exactly, everything is kept.
    assert_eq!(
        parse_mget(br#"{"keys":["a","b","c"]}"#, 3).unwrap(),
        ["a", "b", "c"]
    );
    assert!(matches!(
        parse_mget(br#"{"keys":["a","b","c","d"]}"#, 3),
        Err(ApiError::BatchTooLarge { len: 4, max: 3 })
    ));
}
