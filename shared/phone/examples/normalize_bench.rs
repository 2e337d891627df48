//! How long [`fa_phone::normalize`] takes per number, over the mix of ways
//! Japanese numbers are typed into Salesforce (the importer calls it once
//! per record with a phone): `cargo run --release -p fa-phone --example normalize_bench`.

use std::{hint::black_box, time::Instant};

use fa_phone::{Region, normalize};

/// Numbers as people type them, and text that is not a number.
const TYPED: &[&str] = &[
    "03-1234-5678",
    "090-1234-5678",
    "(03)1234-5678",
    "0312345678",
    "080 2345 6789",
    "+81 3-1234-5678",
    "06-6123-4567",
    "0120-123-456",
    "050-1234-5678",
    "０３－１２３４－５６７８",
    "０９０ー１２３４ー５６７８",
    "03-1234-5678 内線123",
    "045-212-3456",
    "+81-90-1234-5678",
    "なし",
    "03-1234",
];

fn main() {
    const CALLS: usize = 320_000;
    // Every form with its subscriber digits changed, as in a real org where
    // no two records share a number (a fixed xorshift, so runs compare).
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut digit = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 10) as u32
    };
    let numbers: Vec<String> = (0..CALLS)
        .map(|i| {
            let typed = TYPED[i % TYPED.len()];
            let keep = 4;
            typed
                .chars()
                .enumerate()
                .map(|(at, c)| match c.to_digit(10) {
                    Some(_) if at >= keep && c.is_ascii_digit() => char::from_digit(digit(), 10).unwrap_or(c),
                    _ => c,
                })
                .collect()
        })
        .collect();
    // Warm-up: metadata loading and regex compilation are paid once, per
    // process (the importer pays it on its first page).
    let warming = Instant::now();
    for typed in TYPED {
        black_box(normalize(typed, Region::JAPAN));
    }
    println!("first calls (metadata and patterns compiled): {:.1} ms", warming.elapsed().as_secs_f64() * 1e3);
    let started = Instant::now();
    let valid = numbers.iter().filter(|typed| normalize(black_box(typed), Region::JAPAN).is_some()).count();
    println!(
        "normalize: {:.2} µs a call over {CALLS} numbers in {} forms ({valid} valid)",
        started.elapsed().as_secs_f64() * 1e6 / CALLS as f64,
        TYPED.len()
    );
}
