//! Windows file names beyond ASCII: libuv takes UTF-8 and speaks UTF-16 to Windows, uvio hands it Rust paths
//! and gives names back. A directory and files named in several scripts (and outside the BMP) are created,
//! listed, renamed, canonicalised and watched through uvio, and std (which speaks UTF-16 itself) agrees.
#![cfg(windows)]

mod common;

use std::ffi::OsString;
use std::os::windows::ffi::OsStrExt;

use common::TempDir;
use futures::TryStreamExt;
use uvio::fs;

const DIR: &str = "dïr ✓ 日本";
const FILE: &str = "fïlé 🦀 Ωμέγα.txt";
const RENAMED: &str = "переименован ✓.txt";

rt_test! {
    fn non_ascii_names_round_trip_through_utf16() {
        let tmp = TempDir::new("win-utf16");
        let dir = tmp.path().join(DIR);
        let file = dir.join(FILE);
        // The name really reaches Windows as UTF-16 with a surrogate pair (the crab), not as bytes.
        assert!(file.file_name().unwrap().encode_wide().any(|u| (0xD800..0xDC00).contains(&u)));
        let names = run(async {
            fs::create_dir(&dir).await.unwrap();
            fs::write(&file, "contents ✓").await.unwrap();
            assert_eq!(fs::read_to_string(&file).await.unwrap(), "contents ✓");
            assert_eq!(fs::metadata(&file).await.unwrap().len(), "contents ✓".len() as u64);
            let canonical = fs::canonicalize(&file).await.unwrap();
            assert_eq!(canonical.file_name().unwrap(), FILE, "{canonical:?}");
            let listed: Vec<OsString> =
                fs::read_dir(&dir).await.unwrap().map_ok(|e| e.file_name()).try_collect().await.unwrap();
            fs::rename(&file, dir.join(RENAMED)).await.unwrap();
            assert!(!fs::try_exists(&file).await.unwrap());
            listed
        });
        assert_eq!(names, [OsString::from(FILE)]);
        // std, which calls the UTF-16 APIs itself, sees the same names.
        let std_names: Vec<OsString> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(std_names, [OsString::from(RENAMED)]);
        assert_eq!(std::fs::read_to_string(dir.join(RENAMED)).unwrap(), "contents ✓");
    }
}
