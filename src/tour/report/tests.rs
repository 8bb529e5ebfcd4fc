use super::*;

#[test]
fn escapes_markup() {
    assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
}

#[test]
fn finds_image_sources() {
    let html = format!(
        "{}{}",
        figure("pca/a.png", "x"),
        side_by_side(&[("b&c.png", "y")])
    );
    assert_eq!(image_sources(&html), vec!["pca/a.png", "b&c.png"]);
}

#[test]
fn short_numbers() {
    assert_eq!(short(190.576), "190.6");
    assert_eq!(short(12.345), "12.3");
    assert_eq!(short(0.012345), "0.0123");
}

#[test]
fn thousands_separators() {
    assert_eq!(thousands(652824), "652,824");
    assert_eq!(thousands(999), "999");
    assert_eq!(thousands(1000), "1,000");
}
