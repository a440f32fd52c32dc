//! A component for another world entirely: the host must refuse it, naming what it exports instead.

wit_bindgen::generate!({
    inline: "package test:other; world other { export greet: func(name: string) -> string; }",
});

struct Other;

impl Guest for Other {
    fn greet(name: String) -> String {
        format!("hello {name}")
    }
}

export!(Other);
