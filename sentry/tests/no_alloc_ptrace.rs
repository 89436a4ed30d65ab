//! `no_alloc` (see `no_alloc.rs`) on the ptrace platform: the file picks its platform from the
//! name of the target it is built into.

#[path = "no_alloc.rs"]
mod no_alloc;

fn main() {
    no_alloc::main()
}
