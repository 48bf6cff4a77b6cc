//! A quick deterministic fuzz: a few hundred thousand random and mutated byte strings through
//! `decode` and `decode_command` with small limits. Nothing may panic, and whatever decodes
//! must re-encode to bytes that decode to the same thing.

use bytes::BytesMut;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redcluster::resp::internal::decode_command;
use redcluster::resp::{decode, encode_command, encode_value, Limits, Protocol};

const SEEDS: &[&[u8]] = &[
    b"+OK\r\n",
    b"-ERR x\r\n",
    b":123\r\n",
    b"$3\r\nfoo\r\n",
    b"$-1\r\n",
    b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
    b"*-1\r\n",
    b"%1\r\n+a\r\n,1.5\r\n",
    b"~2\r\n#t\r\n_\r\n",
    b">1\r\n(123\r\n",
    b"|1\r\n+k\r\n:1\r\n=7\r\ntxt:abc\r\n",
    b"!3\r\nERR\r\n",
    b"PING \"a\\x41\" 'b'\r\n",
];

const INTERESTING: &[u8] = b"\r\n*$%~>|:+-_,#(!=0123456789\"'\\x ";

fn mutate(rng: &mut StdRng, input: &mut Vec<u8>) {
    for _ in 0..rng.gen_range(1..4) {
        let len = input.len();
        match rng.gen_range(0..6) {
            0 if len > 0 => input[rng.gen_range(0..len)] = rng.gen(),
            1 if len > 0 => {
                input[rng.gen_range(0..len)] = INTERESTING[rng.gen_range(0..INTERESTING.len())]
            }
            2 => input.insert(
                rng.gen_range(0..=len),
                INTERESTING[rng.gen_range(0..INTERESTING.len())],
            ),
            3 if len > 0 => input.truncate(rng.gen_range(0..len)),
            4 if len > 0 => {
                let at = rng.gen_range(0..len);
                input.remove(at);
            }
            _ => {
                let other = SEEDS[rng.gen_range(0..SEEDS.len())];
                let at = rng.gen_range(0..=len);
                input.splice(at..at, other.iter().copied());
            }
        }
    }
}

/// Returns how many values and commands decoded.
fn exercise(input: &[u8], limits: &Limits) -> usize {
    let mut decoded = 0;
    let mut buf = BytesMut::from(input);
    while let Ok(Some(v)) = decode(&mut buf, limits) {
        decoded += 1;
        for proto in [Protocol::Resp2, Protocol::Resp3] {
            let mut wire = BytesMut::new();
            encode_value(&mut wire, &v, proto);
            let once = wire.clone();
            let again = decode(&mut wire, &Limits::default()).unwrap().unwrap();
            let mut twice = BytesMut::new();
            encode_value(&mut twice, &again, proto);
            assert_eq!(
                once, twice,
                "re-encoding {v:?} from {input:?} is not stable"
            );
        }
    }
    let mut buf = BytesMut::from(input);
    while let Ok(Some(args)) = decode_command(&mut buf, limits) {
        decoded += 1;
        let mut wire = BytesMut::new();
        encode_command(&mut wire, &args);
        if !args.is_empty() {
            assert_eq!(
                decode_command(&mut wire, &Limits::default()).unwrap(),
                Some(args)
            );
        }
    }
    decoded
}

#[test]
fn random_and_mutated_input_never_panics() {
    let limits = Limits::default()
        .with_max_bulk_len(64)
        .with_max_elements(8)
        .with_max_depth(4)
        .with_max_line_len(32);
    let mut rng = StdRng::seed_from_u64(0x5eed_2e5b);
    let mut input = Vec::new();
    let mut decoded = 0;
    for i in 0..200_000 {
        if i % 4 == 0 {
            let len = rng.gen_range(0..24);
            input = (0..len)
                .map(|_| {
                    if rng.gen_bool(0.5) {
                        rng.gen()
                    } else {
                        INTERESTING[rng.gen_range(0..INTERESTING.len())]
                    }
                })
                .collect();
        } else {
            if input.len() > 256 || rng.gen_bool(0.2) {
                input = SEEDS[rng.gen_range(0..SEEDS.len())].to_vec();
            }
            mutate(&mut rng, &mut input);
        }
        decoded += exercise(&input, &limits);
    }
    // The mutations keep many inputs valid, so the round-trip checks really run.
    assert!(decoded > 50_000, "only {decoded} frames decoded");
}
