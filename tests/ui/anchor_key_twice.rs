migrate::migrations! { module = "a", module = "b", heads { t = "1.0.0" }, heads { t = "1.0.0" } }

fn main() {}
