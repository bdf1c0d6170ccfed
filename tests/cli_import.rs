//! `tariscope-sync import` with the files Ukrainian accounting and banking software writes:
//! Windows-1251 text (refused as UTF-8 with the place of the first bad byte and the
//! `--encoding windows-1251` hint, read with it), `;` separators, a UTF-8 BOM and decimal
//! commas.

use std::path::Path;
use std::process::Output;

use tariscope_sync::store::Store;
use tariscope_sync::sync::fields::Field;
use tokio::process::Command;

mod cli_support;
use cli_support::{BIN, text};

fn write_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    let text = format!(
        "[api]\nusername = \"demo\"\npassword = \"demo\"\n\
         [mirror]\npath = \"{}\"\n[scope]\nnodes = [1]\n[serve]\nlisten = \"\"\n",
        dir.join("mirror.db").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

async fn import(config: &Path, file: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("import")
        .args(extra)
        .arg(file)
        .output()
        .await
        .unwrap()
}

async fn fullnames(dir: &Path) -> Vec<(String, String)> {
    let store = Store::open(dir.join("mirror.db")).unwrap();
    store
        .desired_subscribers()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.key, d.fields[&Field::Fullname].clone()))
        .collect()
}

#[tokio::test]
async fn a_windows_1251_file_is_refused_as_utf8_with_the_place_and_read_with_its_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    // As 1C writes it: Windows-1251, `;`, CRLF.
    let csv = "key;fullname;departmentid;street\r\n\
               crm-1;Коваленко Олена Іванівна;1;Хрещатик\r\n\
               crm-2;ТОВ «Дніпро-Ґрунт»;1;Січових Стрільців\r\n";
    let (bytes, _, lossy) = encoding_rs::WINDOWS_1251.encode(csv);
    assert!(!lossy);
    let file = dir.path().join("1c-export.csv");
    std::fs::write(&file, &bytes).unwrap();

    let out = import(&config, &file, &[]).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("line 2, byte 7 of the line (offset 40 in the file)")
            && t.contains("--encoding windows-1251"),
        "{t}"
    );
    assert!(
        !dir.path().join("mirror.db").exists(),
        "nothing imported: {t}"
    );

    let out = import(&config, &file, &["--encoding", "windows-1251"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        fullnames(dir.path()).await,
        vec![
            ("crm-1".to_string(), "Коваленко Олена Іванівна".to_string()),
            ("crm-2".to_string(), "ТОВ «Дніпро-Ґрунт»".to_string()),
        ]
    );

    let out = import(&config, &file, &["--encoding", "klingon"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("unknown encoding"), "{}", text(&out));
}

#[tokio::test]
async fn a_semicolon_file_with_a_bom_and_decimal_commas() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let csv = "\u{feff}key;fullname;departmentid;privilegediscount;dns\n\
               crm-1;Бондар Іван;1;370,00;\"292/5550101;292/5550102\"\n\
               crm-2;Мельник Анна;1;1 234,5;\n\
               crm-3;Шевчук Петро;1;12,5,0;\n";
    let file = dir.path().join("bank.csv");
    std::fs::write(&file, csv).unwrap();
    let out = import(&config, &file, &[]).await;
    let t = text(&out);
    // crm-3's discount is no number: rejected, the others go in.
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("2 new") && t.contains("1 rejected"), "{t}");
    assert!(t.contains("row 4 (key crm-3): privilegediscount"), "{t}");
    let store = Store::open(dir.path().join("mirror.db")).unwrap();
    let rows = store.desired_subscribers().await.unwrap();
    assert_eq!(
        rows[0].key, "crm-1",
        "the BOM is not part of the key column"
    );
    assert_eq!(rows[0].fields[&Field::PrivilegeDiscount], "370");
    assert_eq!(rows[0].dns.len(), 2, "{:?}", rows[0].dns);
    assert_eq!(rows[1].fields[&Field::PrivilegeDiscount], "1234.5");
}
