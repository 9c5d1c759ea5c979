// The blank module is reported together with the head that does not parse.
migrate::migrations! { module = "", heads { t = 5 } }

fn main() {}
