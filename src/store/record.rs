//! `Record`: one write's key and value in a single reference-counted allocation.
//!
//! At a million keys the store is bound by memory: how many bytes a key costs and how many
//! dependent cache misses a lookup takes. A `Record` is a thin pointer (8 bytes) to
//!
//! ```text
//! [refs: u32][key_len: u32][value_len: u32][access: u32][key bytes][value bytes]
//! ```
//!
//! and it *is* the map's key: hashing, equality and `Borrow<[u8]>` look at the key bytes only,
//! so a map looks a `&[u8]` up directly. A lookup then touches the map's slot, the map's node
//! (this pointer and the entry's metadata) and the record, whose key comparison brings in the
//! value right behind it. Compared with a boxed key, a separate value buffer and a `Bytes` handle
//! (32 bytes) this saves one allocation and one dependent miss per key, and about 60 bytes: a
//! 12-byte key with a 100-byte value is one 128-byte allocation.
//!
//! The value is copied in when the record is built, so it never pins a request buffer. Clones
//! share the allocation (a read hands one to the HTTP response; replicas store the primary's
//! record, so a replica costs a map node per key, not a second copy of the bytes).
//!
//! The reference count follows `std::sync::Arc`'s protocol (relaxed increment, aborting far
//! below overflow; release decrement with an acquire on the last one before freeing). Its atomics
//! and its allocator calls come from `crate::sync`, so the loom models in
//! `loom-tests/tests/record.rs` check it (loom's allocator reports leaks and double frees).
//!
//! The one mutable field is `access`, the eviction policy's access word (see
//! `store::eviction::access`): a relaxed atomic that reads refresh at most every few
//! milliseconds. It is not part of the record's identity and orders nothing.
//!
//! Must never: be written after `new` apart from `access` (clones on other threads read it
//! without a lock), or free its allocation while a handle is alive.

use std::alloc::Layout;
use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::ptr::NonNull;

use crate::sync::{alloc, dealloc, AtomicU32, BrokenSwitch, Ordering, UnsafeCell};

/// The fixed part at the start of the allocation; the key and value bytes follow it.
#[repr(C)]
struct Header {
    refs: AtomicU32,
    key_len: u32,
    value_len: u32,
    /// The eviction policy's access word (last access, or frequency counter); relaxed.
    access: AtomicU32,
    /// Stands for the key and value bytes that follow: every read of them is a shared access
    /// of this cell and freeing them an exclusive one, so under loom the model checks that
    /// every read happens before the free (zero-sized in the normal build).
    payload: UnsafeCell<()>,
}

const HEADER: usize = std::mem::size_of::<Header>();

/// Above this many handles a clone aborts the process, as `Arc` does: a count that wrapped
/// would free a record still in use.
const MAX_REFS: u32 = u32::MAX / 2;

/// An immutable key and value, shared by reference count. See the module documentation.
pub struct Record {
    ptr: NonNull<Header>,
}

// SAFETY: a record's bytes are never written after `new`, and its count is atomic and follows
// `Arc`'s protocol, so handles may move to and be used from any thread, like `Arc<[u8]>`.
unsafe impl Send for Record {}
// SAFETY: as above; `&Record` only reads immutable bytes or clones (an atomic increment).
unsafe impl Sync for Record {}

impl Record {
    /// Copies `key` and `value` into a new record.
    ///
    /// # Panics
    /// If either is 4 GiB or longer (the store's limits stop such input long before).
    pub fn new(key: &[u8], value: &[u8]) -> Record {
        Self::with_access(key, value, 0)
    }

    /// Copies `key` and `value` into a new record whose access word is `access`.
    ///
    /// # Panics
    /// As [`Record::new`].
    pub fn with_access(key: &[u8], value: &[u8], access: u32) -> Record {
        let key_len = u32::try_from(key.len()).expect("a record's key must be under 4 GiB");
        let value_len = u32::try_from(value.len()).expect("a record's value must be under 4 GiB");
        let layout = Self::layout(key_len, value_len);
        // SAFETY: the layout is never zero-sized (the header alone is 16 bytes).
        let raw = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<Header>()) else {
            std::alloc::handle_alloc_error(layout)
        };
        // SAFETY: `raw` is a fresh allocation of `layout`, aligned for `Header`, with room for
        // the header followed by `key.len() + value.len()` bytes; the sources are other
        // allocations, so the copies do not overlap.
        unsafe {
            ptr.as_ptr().write(Header {
                refs: AtomicU32::new(1),
                key_len,
                value_len,
                access: AtomicU32::new(access),
                payload: UnsafeCell::new(()),
            });
            let data = raw.add(HEADER);
            std::ptr::copy_nonoverlapping(key.as_ptr(), data, key.len());
            std::ptr::copy_nonoverlapping(value.as_ptr(), data.add(key.len()), value.len());
        }
        Record { ptr }
    }

    fn layout(key_len: u32, value_len: u32) -> Layout {
        let size = HEADER + key_len as usize + value_len as usize;
        Layout::from_size_align(size, std::mem::align_of::<Header>())
            .expect("two lengths under 4 GiB plus a header fit a layout")
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the allocation lives while this handle does, and the header was initialised
        // in `new`; only its atomic count is ever written afterwards.
        unsafe { self.ptr.as_ref() }
    }

    #[inline]
    fn bytes(&self, offset: usize, len: u32) -> &[u8] {
        // The read is announced to loom as a shared access of the payload (a no-op otherwise).
        self.header().payload.with(|_| ());
        // SAFETY: callers pass a range inside the key and value bytes, which `new` initialised,
        // which are never written again, and which live while this handle does.
        unsafe {
            let data = self.ptr.as_ptr().cast::<u8>().add(HEADER + offset);
            std::slice::from_raw_parts(data, len as usize)
        }
    }

    /// The key.
    #[inline]
    pub fn key(&self) -> &[u8] {
        self.bytes(0, self.header().key_len)
    }

    /// The value.
    #[inline]
    pub fn value(&self) -> &[u8] {
        let header = self.header();
        self.bytes(header.key_len as usize, header.value_len)
    }

    /// The value's length in bytes.
    #[inline]
    pub fn value_len(&self) -> usize {
        self.header().value_len as usize
    }

    /// The eviction policy's access word.
    #[inline]
    pub fn access(&self) -> u32 {
        self.header().access.load(Ordering::Relaxed)
    }

    /// Stores a new access word (a read that touched the key, or a write that inherits).
    #[inline]
    pub fn set_access(&self, word: u32) {
        self.header().access.store(word, Ordering::Relaxed);
    }

    /// Whether `self` and `other` are handles to the same allocation.
    pub fn same_allocation(&self, other: &Record) -> bool {
        self.ptr == other.ptr
    }
}

impl Clone for Record {
    #[inline]
    fn clone(&self) -> Record {
        // Relaxed is enough for a new handle made from a live one (as in `Arc::clone`): the
        // handle we hold keeps the record alive.
        let before = self.header().refs.fetch_add(1, Ordering::Relaxed);
        if before > MAX_REFS {
            std::process::abort();
        }
        Record { ptr: self.ptr }
    }
}

impl Drop for Record {
    #[inline]
    fn drop(&mut self) {
        // Release publishes this handle's reads; the last handle's acquire sees all of them
        // before the memory is freed (`Arc`'s protocol, with AcqRel instead of a fence).
        if self.header().refs.fetch_sub(1, release_order()) != 1 {
            return;
        }
        let header = self.header();
        // Freeing is an exclusive access of the payload: under loom, a read on another thread
        // that does not happen before this point fails the model.
        header.payload.with_mut(|_| ());
        let layout = Self::layout(header.key_len, header.value_len);
        // SAFETY: this was the last handle, so nothing else can reach the allocation; the
        // header is dropped in place (a no-op for std's atomic, required for loom's) and the
        // memory freed with the layout it was allocated with.
        unsafe {
            std::ptr::drop_in_place(self.ptr.as_ptr());
            dealloc(self.ptr.as_ptr().cast(), layout);
        }
    }
}

/// The loom models' broken variant of the count's decrement (off outside the loom build).
static BROKEN_RELEASE: BrokenSwitch = BrokenSwitch::new();

/// The ordering of the count's decrement: `AcqRel` (`Arc`'s protocol); `Relaxed` in the loom
/// models' broken variant.
#[inline(always)]
fn release_order() -> Ordering {
    if BROKEN_RELEASE.is_on(1) {
        Ordering::Relaxed
    } else {
        Ordering::AcqRel
    }
}

/// Test-only switch for the loom models: the count's decrement becomes `Relaxed`, so the last
/// handle may free the bytes before another thread's read of them is ordered before it. A model
/// run with it on must fail. Panics outside the loom build.
#[cfg(feature = "testing")]
pub fn break_release_for_model() {
    BROKEN_RELEASE.turn_on(1);
}

impl Hash for Record {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Exactly `<[u8] as Hash>::hash`, so a `&[u8]` finds its record (`Borrow`'s contract).
        self.key().hash(state);
    }
}

impl PartialEq for Record {
    #[inline]
    fn eq(&self, other: &Record) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Record {}

impl Borrow<[u8]> for Record {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.key()
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values never appear in logs or debug output; keys may (they are names).
        f.debug_struct("Record")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("value_len", &self.value_len())
            .finish()
    }
}

#[cfg(all(test, not(shardkv_loom)))]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn holds_what_it_was_given() {
        for (key, value) in [
            (&b"k"[..], &b""[..]),
            (b"key:000000000001", &[7u8; 100][..]),
            (b"\x00\xff", b"v\x00alue"),
        ] {
            let record = Record::new(key, value);
            assert_eq!(record.key(), key);
            assert_eq!(record.value(), value);
            assert_eq!(record.value_len(), value.len());
        }
        let big = vec![9u8; 1 << 20];
        let record = Record::new(&big[..4096], &big);
        assert_eq!(record.key(), &big[..4096]);
        assert_eq!(record.value(), &big[..]);
    }

    #[test]
    fn clones_share_and_outlive_the_original() {
        let record = Record::new(b"k", b"value");
        let clones: Vec<Record> = (0..10).map(|_| record.clone()).collect();
        assert!(clones.iter().all(|c| c.same_allocation(&record)));
        drop(record);
        let survivor = clones.into_iter().last().unwrap();
        assert_eq!(survivor.value(), b"value");
        assert_eq!(survivor.header().refs.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn clones_dropped_on_other_threads_free_once() {
        // Many threads clone and drop the same record; the count must come back to one.
        let record = Record::new(b"shared", &[1u8; 64]);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        let c = record.clone();
                        assert_eq!(c.value(), &[1u8; 64]);
                    }
                });
            }
        });
        assert_eq!(record.header().refs.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_map_keyed_by_records_is_looked_up_by_bytes() {
        let mut map: HashMap<Record, u32, foldhash::fast::RandomState> = HashMap::default();
        map.insert(Record::new(b"a", b"1"), 1);
        map.insert(Record::new(b"b", b"2"), 2);
        // Same key, different value: the same map key.
        assert_eq!(map.insert(Record::new(b"a", b"3"), 3), Some(1));
        assert_eq!(map.get(&b"a"[..]), Some(&3));
        let (k, _) = map.get_key_value(&b"a"[..]).unwrap();
        assert_eq!(k.value(), b"1", "HashMap keeps the first key on insert");
        assert_eq!(map.get(&b"c"[..]), None);
    }

    #[test]
    fn one_allocation_of_header_key_and_value() {
        assert_eq!(std::mem::size_of::<Record>(), 8);
        assert_eq!(std::mem::size_of::<Option<Record>>(), 8);
        assert_eq!(Record::layout(12, 100).size(), 128);
    }
}
