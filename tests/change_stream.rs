//! The store's change stream as a sink sees it: every accepted write exactly once, each shard's
//! changes in sequence order with no gap, a multi-key write as one group, and a sink's refusal
//! leaving nothing changed. A sink here is a recorder, as a network follower would be.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use shardkv::clock::Clock;
use shardkv::store::{
    AckPolicy, AckWait, Admission, ChangeSink, Condition, LockFreeShard, Op, Published, Roles,
    ShardedStore, StoreConfig, StoreError,
};

/// One change as the recorder keeps it: shard, sequence number, key, and the value (`None`: a
/// removal).
type Seen = (u32, u64, Vec<u8>, Option<Vec<u8>>);

/// What the recorder saw: per call, whether the changes came as a group, and the changes.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(bool, Vec<Seen>)>>,
    /// When set, every write is refused with this error.
    refuse: Mutex<Option<StoreError>>,
}

impl ChangeSink for Recorder {
    fn waits_for(&self) -> AckWait {
        AckWait::Replicated
    }

    fn admit(&self, _shard: usize, _admission: Admission) -> Result<(), StoreError> {
        match self.refuse.lock().unwrap().clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn publish(&self, published: Published<'_>) {
        let changes = published
            .iter()
            .map(|(c, _roles)| {
                let value = match &c.op {
                    Op::Set { record, .. } => Some(record.value().to_vec()),
                    Op::Remove { .. } => None,
                };
                (c.shard, c.seq, c.op.key().to_vec(), value)
            })
            .collect();
        self.calls
            .lock()
            .unwrap()
            .push((published.is_group(), changes));
    }

    fn poll_acknowledged(
        &self,
        _cx: &mut Context<'_>,
        _shard: usize,
        _seq: u64,
        _roles: &dyn Fn() -> Roles,
        _policy: AckPolicy,
    ) -> Poll<Result<(), StoreError>> {
        Poll::Ready(Ok(()))
    }
}

fn store_with_recorder() -> (Arc<ShardedStore<LockFreeShard>>, Arc<Recorder>) {
    let (clock, _hand) = Clock::manual(1);
    let store = Arc::new(ShardedStore::new(
        StoreConfig {
            shards: 4,
            ..StoreConfig::default()
        },
        clock,
    ));
    let recorder = Arc::new(Recorder::default());
    store.register_sink(recorder.clone()).unwrap();
    (store, recorder)
}

#[test]
fn every_write_reaches_the_sink_once_in_each_shards_order() {
    let (store, recorder) = store_with_recorder();
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..2_000u32 {
                    let key = format!("k{}", (i * 7 + u32::from(t)) % 300);
                    match i % 5 {
                        0 => {
                            store.delete(key.as_bytes()).unwrap();
                        }
                        1 => {
                            let items: Vec<_> = (0..3)
                                .map(|j| (format!("k{}", (i + j) % 300), vec![t; 3], None))
                                .collect();
                            store.set_many(&items).unwrap();
                        }
                        _ => {
                            store
                                .set(
                                    key.as_bytes(),
                                    Bytes::from(vec![t; 2]),
                                    None,
                                    Condition::Always,
                                )
                                .unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());

    let calls = recorder.calls.lock().unwrap();
    // Each shard's changes: sequence numbers 1, 2, 3, ... up to the shard's last, in order.
    let mut next: BTreeMap<u32, u64> = BTreeMap::new();
    let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    for (group, changes) in calls.iter() {
        assert_eq!(*group, changes.len() == 3, "only set_many publishes groups");
        for (shard, seq, key, value) in changes {
            let expected = next.entry(*shard).or_insert(1);
            assert_eq!(
                seq, expected,
                "shard {shard}: a change out of order or missing"
            );
            *expected += 1;
            match value {
                Some(v) => model.insert(key.clone(), v.clone()),
                None => model.remove(key),
            };
        }
    }
    for shard in 0..store.shard_count() {
        assert_eq!(
            next.get(&(shard as u32)).copied().unwrap_or(1) - 1,
            store.shard_seq(shard),
            "shard {shard}: the sink saw fewer changes than the shard took"
        );
    }
    // Replaying the stream gives exactly what the store holds.
    assert_eq!(model.len(), store.len());
    for (key, value) in &model {
        assert_eq!(store.get(key).found().unwrap().value(), &value[..]);
    }
}

#[test]
fn a_sink_that_refuses_a_write_leaves_everything_as_it_was() {
    let (store, recorder) = store_with_recorder();
    let before = store
        .set(b"a", b"1", None, Condition::Always)
        .unwrap()
        .version;
    let refusal = StoreError::ShuttingDown;
    *recorder.refuse.lock().unwrap() = Some(refusal.clone());
    assert_eq!(
        store
            .set(b"a", b"2", Some(Duration::from_secs(9)), Condition::Always)
            .map(|r| r.version),
        Err(refusal.clone())
    );
    let items = [(&b"a"[..], &b"3"[..], None), (&b"b"[..], &b"3"[..], None)];
    assert_eq!(
        store.set_many(&items).map(|r| r.versions),
        Err(refusal.clone())
    );
    assert_eq!(store.delete(b"a"), Err(refusal));
    // Nothing changed, and the sink was handed nothing after the first write.
    let found = store.get(b"a").found().unwrap();
    assert_eq!((found.value(), found.version), (&b"1"[..], before));
    assert!(store.get(b"b").found().is_none());
    assert_eq!(store.len(), 1);
    assert_eq!(store.keys_with_ttl(), 0);
    assert_eq!(recorder.calls.lock().unwrap().len(), 1);
}
