//! What the dynamic loader will open for a binary: its interpreter (PT_INTERP), its DT_NEEDED
//! libraries as `/etc/ld.so.cache` maps them, and the cache itself. Read with `pread` from fds
//! the sentry already holds; anything malformed yields nothing (prefetching is only a hint).

use std::collections::HashMap;
use std::os::fd::RawFd;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NEEDED: i64 = 1;
const DT_STRTAB: i64 = 5;
/// Bounds on what a well-formed binary needs.
const MAX_PHDRS: usize = 64;
const MAX_DYNAMIC: usize = 512;
const MAX_NAME: usize = 256;

fn pread(fd: RawFd, buf: &mut [u8], offset: u64) -> Option<()> {
    let n = nix::sys::uio::pread(unsafe_borrow(fd), buf, offset as i64).ok()?;
    (n == buf.len()).then_some(())
}

fn unsafe_borrow(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: only used for the duration of one pread on an fd the caller keeps open.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or_default())
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default())
}

/// A C string at `offset` in the file, at most `MAX_NAME` bytes.
fn cstr_at(fd: RawFd, offset: u64) -> Option<Vec<u8>> {
    let mut buf = [0u8; MAX_NAME];
    let n = nix::sys::uio::pread(unsafe_borrow(fd), &mut buf, offset as i64).ok()?;
    let end = buf[..n].iter().position(|&b| b == 0)?;
    Some(buf[..end].to_vec())
}

/// The interpreter and DT_NEEDED names of an x86_64 ELF file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ElfDeps {
    /// PT_INTERP, if any.
    pub interp: Option<Vec<u8>>,
    /// DT_NEEDED sonames.
    pub needed: Vec<Vec<u8>>,
}

/// Reads the dependencies of the ELF file behind `fd`.
pub fn elf_deps(fd: RawFd) -> Option<ElfDeps> {
    let mut eh = [0u8; 64];
    pread(fd, &mut eh, 0)?;
    // 64-bit, little-endian, x86_64.
    if &eh[..4] != b"\x7fELF" || eh[4] != 2 || eh[5] != 1 || u16_at(&eh, 18) != 62 {
        return None;
    }
    let (phoff, phentsize, phnum) = (
        u64_at(&eh, 32),
        usize::from(u16_at(&eh, 54)),
        usize::from(u16_at(&eh, 56)),
    );
    if phentsize < 56 || phnum > MAX_PHDRS {
        return None;
    }
    let mut ph = vec![0u8; phentsize * phnum];
    pread(fd, &mut ph, phoff)?;
    let mut deps = ElfDeps::default();
    let mut loads = Vec::new();
    let mut dynamic = None;
    for i in 0..phnum {
        let p = &ph[i * phentsize..];
        let (kind, offset, vaddr, filesz) =
            (u32_at(p, 0), u64_at(p, 8), u64_at(p, 16), u64_at(p, 32));
        match kind {
            PT_INTERP => deps.interp = cstr_at(fd, offset),
            PT_DYNAMIC => dynamic = Some((offset, filesz)),
            PT_LOAD => loads.push((vaddr, offset, filesz)),
            _ => {}
        }
    }
    let Some((dyn_off, dyn_size)) = dynamic else {
        return Some(deps);
    };
    let count = (dyn_size as usize / 16).min(MAX_DYNAMIC);
    let mut dynamic = vec![0u8; count * 16];
    pread(fd, &mut dynamic, dyn_off)?;
    let entries: Vec<(i64, u64)> = dynamic
        .chunks(16)
        .map(|e| (u64_at(e, 0) as i64, u64_at(e, 8)))
        .collect();
    let strtab = entries.iter().find(|e| e.0 == DT_STRTAB)?.1;
    // DT_STRTAB is an address: find the file offset through the segment that maps it.
    let (vaddr, offset, _) = loads
        .iter()
        .find(|(v, _, size)| strtab >= *v && strtab < v + size)?;
    let strtab_off = strtab - vaddr + offset;
    for &(tag, val) in &entries {
        if tag == DT_NEEDED {
            if let Some(name) = cstr_at(fd, strtab_off + val) {
                deps.needed.push(name);
            }
        }
    }
    Some(deps)
}

/// sonames to paths, as `/etc/ld.so.cache` (glibc's "glibc-ld.so.cache1.1" format) lists them
/// for x86_64.
#[derive(Debug, Default)]
pub struct LdCache {
    paths: HashMap<Vec<u8>, Vec<u8>>,
}

const CACHE_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const FLAG_X86_64_LIBC6: u32 = 0x0303;

impl LdCache {
    /// Parses the cache file's bytes; an unknown format gives an empty map.
    pub fn parse(bytes: &[u8]) -> LdCache {
        let mut cache = LdCache::default();
        let Some(start) = bytes
            .windows(CACHE_MAGIC.len())
            .position(|w| w == CACHE_MAGIC)
        else {
            return cache;
        };
        let new = &bytes[start..];
        if new.len() < 48 {
            return cache;
        }
        let nlibs = u32_at(new, 20) as usize;
        let string = |off: u32| -> Option<Vec<u8>> {
            let s = new.get(off as usize..)?;
            Some(s[..s.iter().position(|&b| b == 0)?].to_vec())
        };
        for i in 0..nlibs {
            let Some(e) = new.get(48 + 24 * i..48 + 24 * (i + 1)) else {
                break;
            };
            let (flags, key, value, hwcap) =
                (u32_at(e, 0), u32_at(e, 4), u32_at(e, 8), u64_at(e, 16));
            if flags != FLAG_X86_64_LIBC6 || hwcap != 0 {
                continue;
            }
            if let (Some(k), Some(v)) = (string(key), string(value)) {
                cache.paths.entry(k).or_insert(v);
            }
        }
        cache
    }

    /// Where the loader finds `soname`.
    pub fn path(&self, soname: &[u8]) -> Option<&[u8]> {
        self.paths.get(soname).map(Vec::as_slice)
    }

    /// Entries known.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether no entry is known.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    #[test]
    fn reads_the_hosts_ls_and_ld_cache() {
        let ls = std::fs::File::open("/bin/ls").unwrap();
        let deps = elf_deps(ls.as_raw_fd()).unwrap();
        assert!(
            deps.interp
                .as_deref()
                .is_some_and(|i| i.ends_with(b"ld-linux-x86-64.so.2")),
            "{deps:?}"
        );
        assert!(deps.needed.iter().any(|n| n == b"libc.so.6"), "{deps:?}");
        let cache = LdCache::parse(&std::fs::read("/etc/ld.so.cache").unwrap());
        let libc = cache.path(b"libc.so.6").expect("libc in ld.so.cache");
        assert!(std::path::Path::new(std::str::from_utf8(libc).unwrap()).exists());
    }

    #[test]
    fn garbage_gives_nothing() {
        let f = std::fs::File::open("/etc/hostname").unwrap();
        assert_eq!(elf_deps(f.as_raw_fd()), None);
        assert!(LdCache::parse(b"glibc-ld.so.cache1.1\xff\xff\xff\xff").is_empty());
        assert!(LdCache::parse(b"").is_empty());
    }
}
