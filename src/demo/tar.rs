//! Just enough of the ustar format for the demo's release artifact: flat
//! regular files, as `tar cf` writes them, so `tar tvf` reads the artifact
//! too. Reading refuses anything else (directories, links, paths with `/`),
//! so unpacking can never write outside the release directory.

use super::durable::Res;

const BLOCK: usize = 512;
/// A fixed time, so the same release always gives the same bytes and hash.
const MTIME: u64 = 1_700_000_000;

pub fn pack(files: &[(String, Vec<u8>)]) -> Res<Vec<u8>> {
    let mut out = Vec::new();
    for (name, data) in files {
        check_name(name)?;
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        octal(&mut h[100..108], 0o644);
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], data.len() as u64);
        octal(&mut h[136..148], MTIME);
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let sum = checksum(&h);
        octal(&mut h[148..155], sum);
        h[155] = b' ';
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(BLOCK), 0);
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    Ok(out)
}

pub fn unpack(bytes: &[u8]) -> Res<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    let mut at = 0;
    while at + BLOCK <= bytes.len() {
        let h = &bytes[at..at + BLOCK];
        if h.iter().all(|&b| b == 0) {
            return Ok(files);
        }
        let stored = parse_octal(&h[148..156])?;
        if stored != checksum(h) {
            return Err(format!("tar header at byte {at}: bad checksum"));
        }
        let name_end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
        let name = std::str::from_utf8(&h[..name_end])
            .map_err(|_| format!("tar header at byte {at}: the name is not UTF-8"))?
            .to_string();
        check_name(&name)?;
        if h[156] != b'0' && h[156] != 0 {
            return Err(format!("{name}: only regular files belong in a release"));
        }
        let size = usize::try_from(parse_octal(&h[124..136])?)
            .map_err(|_| format!("{name}: too large"))?;
        let start = at + BLOCK;
        let end = start
            .checked_add(size)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| format!("{name}: the archive is truncated"))?;
        files.push((name, bytes[start..end].to_vec()));
        at = end.next_multiple_of(BLOCK);
    }
    Err("the archive is truncated (no end marker)".into())
}

fn check_name(name: &str) -> Res<()> {
    let plain =
        !name.is_empty() && name.len() < 100 && !name.contains('/') && name != "." && name != "..";
    if plain {
        Ok(())
    } else {
        Err(format!("`{name}`: a release holds plain file names only"))
    }
}

/// The header's checksum: its bytes summed, the checksum field as spaces.
fn checksum(h: &[u8]) -> u64 {
    h.iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum()
}

/// Zero-padded octal digits filling the field but its last byte (NUL).
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
}

fn parse_octal(field: &[u8]) -> Res<u64> {
    let text: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    let text = text.trim();
    u64::from_str_radix(text, 8).map_err(|_| format!("tar header: `{text}` is not octal"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let files = vec![
            ("VERSION".to_string(), b"2.0\n".to_vec()),
            ("empty".to_string(), Vec::new()),
            ("big".to_string(), vec![7u8; 1500]),
        ];
        let packed = pack(&files).unwrap();
        assert_eq!(packed.len() % BLOCK, 0);
        assert_eq!(unpack(&packed).unwrap(), files);
    }

    #[test]
    fn refuses_paths_and_damage() {
        assert!(pack(&[("../x".into(), vec![])]).is_err());
        let mut packed = pack(&[("a".into(), b"hello".to_vec())]).unwrap();
        packed[0] = b'b';
        assert!(unpack(&packed).unwrap_err().contains("checksum"));
        let packed = pack(&[("a".into(), vec![1; 600])]).unwrap();
        assert!(unpack(&packed[..700]).is_err());
    }
}
