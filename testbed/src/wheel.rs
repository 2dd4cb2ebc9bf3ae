//! Python wheels (PEP 427), for products a seed installs with pip rather
//! than apt (WalT 4). A wheel is a zip of the package's files plus a
//! `.dist-info` with METADATA, WHEEL, entry points and a RECORD of hashes.

use std::io::Write;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

use crate::error::{Error, Result};

/// A pure-Python wheel, declared.
#[derive(Debug, Clone, Default)]
pub struct WheelSpec {
    /// Distribution name as pip sees it, e.g. `walt-server`.
    pub name: String,
    pub version: String,
    /// (path inside the wheel, contents), e.g. `walt_server/__init__.py`.
    pub files: Vec<(String, Vec<u8>)>,
    /// `name = module:function` lines of `[console_scripts]`.
    pub console_scripts: Vec<String>,
}

impl WheelSpec {
    /// `walt_server-4.0-py3-none-any.whl`.
    pub fn file_name(&self) -> String {
        format!("{}-{}-py3-none-any.whl", self.dist(), self.version)
    }

    fn dist(&self) -> String {
        self.name.replace('-', "_")
    }

    /// The wheel's bytes.
    pub fn build(&self) -> Result<Vec<u8>> {
        let info = format!("{}-{}.dist-info", self.dist(), self.version);
        let mut files = self.files.clone();
        files.push((
            format!("{info}/METADATA"),
            format!(
                "Metadata-Version: 2.1\nName: {}\nVersion: {}\nSummary: stand-in {} for hoist's tests\n",
                self.name, self.version, self.name
            )
            .into_bytes(),
        ));
        files.push((
            format!("{info}/WHEEL"),
            b"Wheel-Version: 1.0\nGenerator: hoist-testbed\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
                .to_vec(),
        ));
        if !self.console_scripts.is_empty() {
            let mut ep = String::from("[console_scripts]\n");
            for s in &self.console_scripts {
                ep.push_str(s);
                ep.push('\n');
            }
            files.push((format!("{info}/entry_points.txt"), ep.into_bytes()));
        }
        let mut record = String::new();
        for (path, data) in &files {
            let hash =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(data));
            record.push_str(&format!("{path},sha256={hash},{}\n", data.len()));
        }
        record.push_str(&format!("{info}/RECORD,,\n"));
        files.push((format!("{info}/RECORD"), record.into_bytes()));

        let zerr = |e: zip::result::ZipError| Error::Spec(format!("wheel {}: {e}", self.name));
        let mut zw = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .unix_permissions(0o644);
        for (path, data) in &files {
            zw.start_file(path.as_str(), opts).map_err(zerr)?;
            zw.write_all(data)
                .map_err(|e| Error::Spec(format!("wheel {}: {e}", self.name)))?;
        }
        Ok(zw.finish().map_err(zerr)?.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_is_a_zip_with_a_record() {
        let w = WheelSpec {
            name: "demo-pkg".into(),
            version: "1.0".into(),
            files: vec![("demo_pkg/__init__.py".into(), b"x = 1\n".to_vec())],
            console_scripts: vec!["demo = demo_pkg:main".into()],
        };
        assert_eq!(w.file_name(), "demo_pkg-1.0-py3-none-any.whl");
        let bytes = w.build().expect("build");
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
        let names: Vec<String> = z.file_names().map(str::to_owned).collect();
        assert!(
            names.contains(&"demo_pkg-1.0.dist-info/RECORD".to_owned()),
            "{names:?}"
        );
        let mut record = String::new();
        std::io::Read::read_to_string(
            &mut z.by_name("demo_pkg-1.0.dist-info/RECORD").expect("RECORD"),
            &mut record,
        )
        .expect("read");
        assert!(record.contains("demo_pkg/__init__.py,sha256="), "{record}");
    }
}
