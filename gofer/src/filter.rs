//! The gofer's own seccomp filter (filled in with the process wiring).
