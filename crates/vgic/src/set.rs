//! A fixed-size set of INTIDs (one bit each), for the per-vCPU bookkeeping
//! that keeps the hot paths proportional to what is loaded or pending.

/// 64-bit words covering INTIDs `0..1024` (SGIs, PPIs and every SPI).
const WORDS: usize = 16;

/// A set of INTIDs `0..1024`: SGIs/PPIs of one bank and SPIs share it
/// (INTID `n` is bit `n % 64` of word `n / 64`). INTIDs above 1023 are never
/// members. A summary mask marks the non-empty words, so iteration costs one
/// step per member, not per word: these sets sit on the exit path of every
/// injection. No allocation.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct IntidSet {
    words: [u64; WORDS],
    /// Bit `i` set: `words[i]` is not zero.
    summary: u16,
}

impl IntidSet {
    /// The empty set.
    pub const fn new() -> Self {
        Self { words: [0; WORDS], summary: 0 }
    }

    /// The set of INTIDs `0..n`.
    pub fn below(n: u32) -> Self {
        let mut s = Self::new();
        for (i, w) in s.words.iter_mut().enumerate() {
            let first = 64 * i as u32;
            *w = match n.saturating_sub(first) {
                0 => 0,
                k @ 1..=63 => (1 << k) - 1,
                _ => u64::MAX,
            };
            if *w != 0 {
                s.summary |= 1 << i;
            }
        }
        s
    }

    /// Adds `intid` (ignored if above 1023).
    pub fn insert(&mut self, intid: u32) {
        let i = (intid / 64) as usize;
        if let Some(w) = self.words.get_mut(i) {
            *w |= 1 << (intid % 64);
            self.summary |= 1 << i;
        }
    }

    /// Removes `intid`.
    pub fn remove(&mut self, intid: u32) {
        let i = (intid / 64) as usize;
        if let Some(w) = self.words.get_mut(i) {
            *w &= !(1 << (intid % 64));
            if *w == 0 {
                self.summary &= !(1 << i);
            }
        }
    }

    /// Whether `intid` is a member.
    #[cfg(test)]
    pub fn contains(&self, intid: u32) -> bool {
        self.words.get((intid / 64) as usize).is_some_and(|w| w & (1 << (intid % 64)) != 0)
    }

    /// Whether the set has no member.
    pub fn is_empty(&self) -> bool {
        self.summary == 0
    }

    /// Adds every member of `other`.
    pub fn union_with(&mut self, other: &Self) {
        for (w, o) in self.words.iter_mut().zip(other.words) {
            *w |= o;
        }
        self.summary |= other.summary;
    }
}

/// The members of an [`IntidSet`] (a snapshot), ascending.
pub(crate) struct Iter {
    set: IntidSet,
}

impl Iterator for Iter {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let s = &mut self.set;
        while s.summary != 0 {
            let i = s.summary.trailing_zeros() as usize;
            match s.words.get_mut(i) {
                Some(w) if *w != 0 => {
                    let bit = w.trailing_zeros();
                    *w &= *w - 1;
                    if *w == 0 {
                        s.summary &= !(1 << i);
                    }
                    return Some(64 * i as u32 + bit);
                }
                _ => s.summary &= !(1 << i),
            }
        }
        None
    }
}

impl IntoIterator for IntidSet {
    type Item = u32;
    type IntoIter = Iter;

    fn into_iter(self) -> Iter {
        Iter { set: self }
    }
}

#[cfg(test)]
mod tests {
    use super::IntidSet;
    use alloc::vec::Vec;

    #[test]
    fn members_iterate_in_order() {
        let mut s = IntidSet::new();
        for i in [1023, 0, 63, 64, 31, 32, 500, 1024, u32::MAX] {
            s.insert(i);
        }
        s.remove(500);
        let v: Vec<u32> = s.into_iter().collect();
        assert_eq!(v, [0, 31, 32, 63, 64, 1023]);
        assert!(s.contains(63) && !s.contains(500) && !s.contains(1024));
    }

    #[test]
    fn below_covers_a_prefix() {
        for n in [0, 1, 32, 63, 64, 65, 96, 1020, 1024, 5000] {
            let v: Vec<u32> = IntidSet::below(n).into_iter().collect();
            let want: Vec<u32> = (0..n.min(1024)).collect();
            assert_eq!(v, want, "n = {n}");
        }
        let mut s = IntidSet::new();
        s.insert(7);
        s.union_with(&IntidSet::below(3));
        assert_eq!(s.into_iter().collect::<Vec<_>>(), [0, 1, 2, 7]);
    }

    #[test]
    fn emptiness_follows_the_members() {
        let mut s = IntidSet::new();
        assert!(s.is_empty());
        s.insert(700);
        s.insert(701);
        assert!(!s.is_empty());
        s.remove(700);
        assert!(!s.is_empty());
        s.remove(701);
        assert!(s.is_empty());
        assert_eq!(s.into_iter().count(), 0);
        assert_eq!(s, IntidSet::new(), "a set emptied by removals equals the empty set");
    }
}
