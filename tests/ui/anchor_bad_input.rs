migrate::migrations! { heads { session = "1.0" }, colour = "red" }

fn main() {}
