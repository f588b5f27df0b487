//! The `#[uvio::main]` and `#[uvio::test]` attributes. Use them through the `uvio` crate (feature `macros`,
//! on by default), which re-exports them and documents them: the expansion calls `::uvio::__macro_support`,
//! or `<path>::__macro_support` with `crate = "<path>"` in a crate that renamed its `uvio` dependency.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{AttrStyle, Attribute, ItemFn, LitStr, Path, ReturnType};

/// Runs an `async fn` on a new uvio runtime; see `uvio::main`.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Main, args.into(), item.into()).into()
}

/// Makes an `async fn` a `#[test]` run on a new uvio runtime; see `uvio::test`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Test, args.into(), item.into()).into()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Main,
    Test,
}

impl Kind {
    fn attribute(self) -> &'static str {
        match self {
            Kind::Main => "#[uvio::main]",
            Kind::Test => "#[uvio::test]",
        }
    }
}

/// The attribute's arguments.
#[derive(Default)]
struct Args {
    /// The canonical engine name (`Backend::name`) and the literal it came from.
    backend: Option<(&'static str, LitStr)>,
    /// `all_engines` (tests only), by the span of the word.
    all_engines: Option<Span>,
    /// `crate = "path"`: where the expansion finds uvio when the dependency is renamed (else `::uvio`).
    krate: Option<Path>,
}

impl Args {
    /// The path the expansion names uvio by.
    fn uvio_path(&self) -> TokenStream2 {
        match &self.krate {
            Some(path) => quote! { #path },
            None => quote! { ::uvio },
        }
    }
}

/// Parses the value of `crate = "…"`: a path such as `"my_uvio"` or `"::deps::uvio"`, spanned at the literal
/// so that errors in the expansion point at it.
fn parse_crate_path(lit: &LitStr) -> syn::Result<Path> {
    let invalid = || {
        syn::Error::new(
            lit.span(),
            format!(
                "invalid `crate` value {:?}: expected the path uvio is known by, such as \"my_uvio\" or \"::deps::uvio\"",
                lit.value()
            ),
        )
    };
    let path: Path = lit.parse().map_err(|_| invalid())?;
    // A path to an item (`uvio::Runtime`) parses too but is no crate; generic arguments never belong in it.
    if path.segments.iter().any(|segment| !segment.arguments.is_none()) {
        return Err(invalid());
    }
    Ok(path)
}

/// The names `uvio::Backend`'s `FromStr` accepts (case-insensitive), mapped to the canonical one. The engines
/// of every OS are accepted here, since a proc macro runs on the host: whether the target has the engine is
/// decided by `cfg(target_os)` in the expansion.
fn canonical_backend(name: &str) -> Option<&'static str> {
    match name.to_ascii_lowercase().as_str() {
        "auto" => Some("auto"),
        "libuv" | "uv" => Some("libuv"),
        "epoll" => Some("epoll"),
        "io_uring" | "io-uring" | "iouring" | "uring" => Some("io_uring"),
        _ => None,
    }
}

/// Whether the engine exists on Linux only.
fn linux_only(backend: &str) -> bool {
    matches!(backend, "epoll" | "io_uring")
}

fn parse_args(kind: Kind, args: TokenStream2) -> syn::Result<Args> {
    let mut out = Args::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("backend") {
            if out.backend.is_some() {
                return Err(meta.error("`backend` is given twice"));
            }
            let lit: LitStr = meta.value()?.parse()?;
            let name = canonical_backend(&lit.value()).ok_or_else(|| {
                syn::Error::new(
                    lit.span(),
                    format!(
                        "unknown uvio backend {:?}: expected \"auto\", \"libuv\", \"epoll\" or \"io_uring\"",
                        lit.value()
                    ),
                )
            })?;
            out.backend = Some((name, lit));
            Ok(())
        } else if meta.path.is_ident("crate") {
            if out.krate.is_some() {
                return Err(meta.error("`crate` is given twice"));
            }
            let lit: LitStr = meta.value()?.parse()?;
            out.krate = Some(parse_crate_path(&lit)?);
            Ok(())
        } else if kind == Kind::Test && meta.path.is_ident("all_engines") {
            out.all_engines = Some(meta.path.span());
            Ok(())
        } else {
            Err(meta.error(match kind {
                Kind::Main => "unknown argument: #[uvio::main] takes `backend = \"…\"` and `crate = \"…\"`",
                Kind::Test => {
                    "unknown argument: #[uvio::test] takes `backend = \"…\"` or `all_engines`, and `crate = \"…\"`"
                }
            }))
        }
    });
    syn::parse::Parser::parse2(parser, args)?;
    if let (Some(_), Some(span)) = (&out.backend, out.all_engines) {
        return Err(syn::Error::new(span, "`all_engines` and `backend` exclude each other"));
    }
    Ok(out)
}

/// The expansion, or the errors plus a stand-in for the function (so that the only errors shown are ours, not
/// a cascade such as "`main` function not found").
fn expand(kind: Kind, args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let mut function: ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(e) => {
            let error = e.into_compile_error();
            return quote! { #error #item };
        }
    };
    let checked = parse_args(kind, args).and_then(|args| check_signature(kind, &function).map(|()| args));
    match checked {
        Ok(args) => match kind {
            Kind::Main => expand_main(function, args),
            Kind::Test => expand_test(function, args),
        },
        Err(e) => {
            let error = e.into_compile_error();
            function.sig.asyncness = None;
            function.block = syn::parse_quote!({ ::core::unimplemented!() });
            quote! { #error #function }
        }
    }
}

/// The function must be `async`, take no arguments and have no generic parameters (its body becomes an inner
/// `async fn` of the same signature).
fn check_signature(kind: Kind, function: &ItemFn) -> syn::Result<()> {
    let sig = &function.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            format!("{} needs an `async fn` (the body is what the runtime runs)", kind.attribute()),
        ));
    }
    if !sig.inputs.is_empty() {
        return Err(syn::Error::new(
            sig.inputs.span(),
            format!("the function under {} takes no arguments", kind.attribute()),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            format!("the function under {} cannot be generic", kind.attribute()),
        ));
    }
    Ok(())
}

/// The user's body as an inner `async fn __uvio_body() -> Output`: its declared return type is what `?` and
/// `return` inside the body convert to, exactly as in the `async fn` the user wrote.
/// Inner attributes (`#![allow(…)]` at the top of the body) stay with the body.
fn inner_body(function: &ItemFn) -> TokenStream2 {
    let output = &function.sig.output;
    let inner = function.attrs.iter().filter(|a| matches!(a.style, AttrStyle::Inner(_)));
    let stmts = &function.block.stmts;
    quote! {
        #[allow(clippy::unused_async)]
        async fn __uvio_body() #output {
            #(#inner)*
            #(#stmts)*
        }
    }
}

/// The attributes written above the function, which stay on it.
fn outer_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|a| matches!(a.style, AttrStyle::Outer))
}

fn expand_main(function: ItemFn, args: Args) -> TokenStream2 {
    let body = inner_body(&function);
    let uvio = args.uvio_path();
    let ItemFn { attrs, vis, mut sig, .. } = function;
    sig.asyncness = None;
    let (name, not_here) = match &args.backend {
        Some((name, lit)) if linux_only(name) => {
            let message = format!("the {name} engine exists on Linux only");
            (*name, quote_spanned! { lit.span()=> #[cfg(not(target_os = "linux"))] ::core::compile_error!(#message); })
        }
        Some((name, _)) => (*name, quote! {}),
        None => ("auto", quote! {}),
    };
    let attrs = outer_attrs(&attrs);
    quote! {
        #(#attrs)*
        #vis #sig {
            #not_here
            #body
            #uvio::__macro_support::block_on_main(#name, __uvio_body())
        }
    }
}

fn expand_test(function: ItemFn, args: Args) -> TokenStream2 {
    let body = inner_body(&function);
    let uvio = args.uvio_path();
    let ItemFn { attrs, vis, mut sig, .. } = function;
    sig.asyncness = None;
    // The test itself returns `()`: a failure (a panic, or an `Err` the body returned) is reported by a panic
    // that names the engine.
    sig.output = ReturnType::Default;
    let ident = &sig.ident;
    let test_name = quote! { ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)) };
    let (ignore, run) = match (&args.backend, args.all_engines) {
        (_, Some(_)) => (quote! {}, quote! { #uvio::__macro_support::run_each_engine(#test_name, __uvio_body) }),
        (Some((name, lit)), None) => {
            let ignore = if linux_only(name) {
                let reason = format!("the {name} engine exists on Linux only");
                quote_spanned! { lit.span()=> #[cfg_attr(not(target_os = "linux"), ignore = #reason)] }
            } else {
                quote! {}
            };
            (ignore, quote! { #uvio::__macro_support::run_test(#test_name, #name, __uvio_body) })
        }
        (None, None) => (quote! {}, quote! { #uvio::__macro_support::run_test(#test_name, "auto", __uvio_body) }),
    };
    let attrs = outer_attrs(&attrs);
    quote! {
        #[::core::prelude::v1::test]
        #ignore
        #(#attrs)*
        #vis #sig {
            #body
            #run
        }
    }
}
