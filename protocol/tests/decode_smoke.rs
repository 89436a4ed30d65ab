//! The fuzz target's property on stable, over deterministic pseudo-random and mutated frames:
//! the decoders never panic, and what decodes re-encodes byte for byte. (`cargo fuzz run decode`
//! under fuzz/ explores further with coverage guidance.)

use rvisor_protocol::{Identity, Loc, Request};

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn random_and_mutated_frames_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut seed = Vec::new();
    Request::Rename {
        from: Loc {
            base: b"/a",
            path: b"b",
        },
        to: Loc {
            base: b"/",
            path: b"/c",
        },
        flags: 1,
    }
    .encode(Identity::new(1, 2), &mut seed);
    let mut walk = Vec::new();
    Request::Walk {
        paths: vec![b"/x", b"/y"],
        nofollow: false,
    }
    .encode(Identity::default(), &mut walk);
    let mut decoded = 0;
    for round in 0..200_000u32 {
        let frame: Vec<u8> = match round % 3 {
            0 => (0..rng.next() % 64).map(|_| rng.next() as u8).collect(),
            1 => {
                let mut f = seed.clone();
                for _ in 0..1 + rng.next() % 4 {
                    let i = (rng.next() as usize) % f.len();
                    f[i] = rng.next() as u8;
                }
                f
            }
            _ => {
                let mut f = walk.clone();
                let cut = (rng.next() as usize) % (f.len() + 1);
                f.truncate(cut);
                f.extend((0..rng.next() % 8).map(|_| rng.next() as u8));
                f
            }
        };
        if Request::decode(&frame).is_ok() {
            decoded += 1;
        }
        rvisor_protocol::assert_roundtrip(&frame);
    }
    // Mutations of a valid frame that keep it valid must be among them (the decoder is not
    // simply refusing everything).
    assert!(decoded > 100, "only {decoded} frames decoded");
}
