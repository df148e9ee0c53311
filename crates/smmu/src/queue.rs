//! Circular queues (command and event queue) in memory: the base register
//! values, and producer/consumer pointer arithmetic.
//!
//! A pointer holds an index (its low `log2` bits) and a wrap bit (bit
//! `log2`), which flips each time the index wraps round; producer and
//! consumer are equal when the queue is empty, and differ only in the wrap
//! bit when it is full. Bit 31 of the event queue's pointers is an overflow
//! flag, not part of the pointer ([`Queue::ptr`] drops it).

use crate::place;

/// One queue of `2^log2` entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queue {
    log2: u32,
}

impl Queue {
    /// A queue of `2^log2` entries (log2 at most 19, the architecture's
    /// largest).
    pub const fn new(log2: u32) -> Self {
        Self { log2: if log2 > 19 { 19 } else { log2 } }
    }

    /// log2 of the number of entries.
    pub const fn log2(&self) -> u32 {
        self.log2
    }

    /// Number of entries.
    pub const fn entries(&self) -> u32 {
        1 << self.log2
    }

    /// Index and wrap bit of register value `reg` (flags dropped).
    pub const fn ptr(&self, reg: u32) -> u32 {
        reg & ((2 << self.log2) - 1)
    }

    /// Entry index of pointer `ptr`.
    pub const fn index(&self, ptr: u32) -> usize {
        (ptr & (self.entries() - 1)) as usize
    }

    /// The pointer after `ptr` (the wrap bit flips past the last entry).
    pub const fn next(&self, ptr: u32) -> u32 {
        self.ptr(self.ptr(ptr) + 1)
    }

    /// Whether a queue with these pointers holds nothing.
    pub const fn is_empty(&self, prod: u32, cons: u32) -> bool {
        self.ptr(prod) == self.ptr(cons)
    }

    /// Whether a queue with these pointers has no free entry.
    pub const fn is_full(&self, prod: u32, cons: u32) -> bool {
        self.ptr(prod) ^ self.ptr(cons) == self.entries()
    }

    /// Entries between `cons` and `prod`.
    pub const fn used(&self, prod: u32, cons: u32) -> u32 {
        self.ptr(self.ptr(prod).wrapping_sub(self.ptr(cons)))
    }

    /// Whether the consumer, now at `cons`, has passed the entry at
    /// `ptr` (which was produced before `prod`): it is no longer between
    /// `cons` and `prod`.
    pub const fn consumed(&self, ptr: u32, prod: u32, cons: u32) -> bool {
        let ahead = self.used(prod, ptr);
        self.used(prod, cons) < ahead
    }

    /// The `*Q_BASE` register value for a queue at physical address `pa`
    /// (aligned to its size, at least 32 bytes): read/write-allocate hint
    /// (bit 62), address \[51:5\], LOG2SIZE \[4:0\].
    pub const fn base(&self, pa: u64) -> u64 {
        (1 << 62) | (pa & 0x000f_ffff_ffff_ffe0) | place(self.log2 as u64, 4, 0)
    }
}

/// The `STRTAB_BASE` value for a stream table at `pa` (64-byte aligned).
pub const fn strtab_base(pa: u64) -> u64 {
    (1 << 62) | (pa & 0x000f_ffff_ffff_ffc0)
}

/// The `STRTAB_BASE_CFG` value for a linear table of `2^log2` entries.
pub const fn strtab_linear(log2: u32) -> u32 {
    // FMT [17:16] = 0: linear; LOG2SIZE [5:0].
    log2 & 0x3f
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wraps_and_fills() {
        let q = Queue::new(2);
        assert_eq!(q.entries(), 4);
        let mut prod = 0;
        for _ in 0..4 {
            assert!(!q.is_full(prod, 0));
            prod = q.next(prod);
        }
        assert_eq!(prod, 0b100, "index 0, wrap bit set");
        assert!(q.is_full(prod, 0));
        assert!(!q.is_empty(prod, 0));
        assert!(q.is_empty(prod, prod));
        assert_eq!(q.used(prod, 0), 4);
        assert_eq!(q.index(prod), 0);
        assert_eq!(q.ptr(0x8000_0005), 5, "the overflow flag is not part of the pointer");
        assert_eq!(q.base(0x4010_0000), (1 << 62) | 0x4010_0000 | 2);
        assert_eq!(strtab_base(0x4020_0040), (1 << 62) | 0x4020_0040);
    }

    proptest! {
        /// Against a model that counts: any sequence of produce and
        /// consume steps keeps used/empty/full and `consumed` right.
        #[test]
        fn pointers_follow_a_counting_model(log2 in 0u32..6, steps in proptest::collection::vec(any::<bool>(), 0..200)) {
            let q = Queue::new(log2);
            let n = q.entries();
            let (mut prod, mut cons) = (0u32, 0u32);
            let (mut produced, mut consumed) = (0u64, 0u64);
            let mut marks: std::vec::Vec<(u32, u64)> = std::vec::Vec::new();
            for produce in steps {
                if produce && !q.is_full(prod, cons) {
                    marks.push((prod, produced));
                    prod = q.next(prod);
                    produced += 1;
                } else if !produce && !q.is_empty(prod, cons) {
                    cons = q.next(cons);
                    consumed += 1;
                }
                let used = (produced - consumed) as u32;
                prop_assert_eq!(q.used(prod, cons), used);
                prop_assert_eq!(q.is_empty(prod, cons), used == 0);
                prop_assert_eq!(q.is_full(prod, cons), used == n);
                marks.retain(|&(_, at)| produced - at <= u64::from(n));
                for &(ptr, at) in &marks {
                    prop_assert_eq!(q.consumed(ptr, prod, cons), at < consumed);
                }
            }
        }
    }
}
