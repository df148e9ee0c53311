//! QEMU TCG plugin for `cargo xtask profile`: counts the instructions each
//! vCPU executes, split into hypervisor / guest kernel / guest low-VA, and
//! per translation block inside the hypervisor image; writes a report at
//! exit.
//!
//! Cheapest instrumentation the plugin API version 1 offers: one execution
//! callback per translation block that adds the block's instruction count.
//! With `mark=ADDR:NAME` arguments (the entries of the profiling build's
//! exit marker functions) it also adds up the hypervisor instructions of
//! each exit by reason ([`count::Exits`]).
//! A block cut short by an exception (a trapping guest instruction, an
//! abort) still counts all its instructions.
//!
//! Arguments: `hyp=START-END` (hex, end exclusive: the hypervisor image)
//! and `out=FILE`. Licensed GPL-2.0-or-later (it links the `qemu-plugin`
//! crate); see LICENSE in this directory.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod count;

#[cfg(not(test))]
mod glue {
    use crate::count::{self, Class, Counters, Exits, HypBlock, Options};
    use qemu_plugin::install::{Args, Info};
    use qemu_plugin::{register, HasCallbacks, PluginId, Register, TranslationBlock};
    use std::sync::{Arc, Mutex};

    /// The plugin's state between QEMU's callbacks.
    #[derive(Default)]
    struct Profile {
        opts: Option<Options>,
        counters: Arc<Counters>,
        exits: Option<Arc<Exits>>,
        blocks: Arc<Mutex<Vec<Arc<HypBlock>>>>,
        /// Host address minus virtual address of the hypervisor's code.
        hyp_delta: Option<u64>,
    }

    fn invalid(msg: String) -> qemu_plugin::Error {
        eprintln!("ferrovisor-profile-plugin: {msg}");
        std::io::Error::new(std::io::ErrorKind::InvalidInput, msg).into()
    }

    impl Register for Profile {
        fn register(&mut self, id: PluginId, args: &Args, _: &Info) -> qemu_plugin::Result<()> {
            let opts = count::parse_options(args.raw.iter().map(String::as_str)).map_err(invalid)?;
            let exits = Arc::new(Exits::new(opts.marks.len()));
            self.exits = Some(exits.clone());
            let (o, counters, blocks) = (opts.clone(), self.counters.clone(), self.blocks.clone());
            qemu_plugin::qemu_plugin_register_atexit_cb(id, move |_| {
                let text = match blocks.lock() {
                    Ok(b) => count::report(&o, &counters, &exits, &b),
                    Err(_) => return,
                };
                if let Err(e) = std::fs::write(&o.out, text) {
                    eprintln!("ferrovisor-profile-plugin: writing {}: {e}", o.out);
                }
            })?;
            self.opts = Some(opts);
            Ok(())
        }
    }

    impl HasCallbacks for Profile {
        fn on_translation_block_translate(
            &mut self,
            _: PluginId,
            tb: TranslationBlock,
        ) -> qemu_plugin::Result<()> {
            let (Some(opts), Some(exits)) = (&self.opts, &self.exits) else { return Ok(()) };
            let exits = exits.clone();
            let vaddr = tb.vaddr();
            let insns = tb.size() as u64;
            // QEMU gives no host address for code outside RAM (the boot ROM).
            let haddr = tb.instruction(0).map(|i| i.haddr()).unwrap_or(0);
            let delta = (haddr != 0).then(|| haddr.wrapping_sub(vaddr));
            if self.hyp_delta.is_none() && (opts.hyp.0..opts.hyp.1).contains(&vaddr) {
                // The first block in the range: the hypervisor's entry, MMU off.
                self.hyp_delta = delta;
            }
            let class = count::classify(vaddr, delta, opts.hyp, self.hyp_delta);
            let counters = self.counters.clone();
            if class == Class::Hyp {
                let mark = opts.marks.iter().position(|(a, _)| *a == vaddr);
                let block = Arc::new(HypBlock::new(vaddr, insns));
                if let Ok(mut blocks) = self.blocks.lock() {
                    blocks.push(block.clone());
                }
                tb.register_execute_callback(move |vcpu| {
                    let vcpu = vcpu as usize;
                    counters.add(vcpu, class, insns);
                    exits.hyp(vcpu, insns, mark);
                    if let Some(e) = block.execs.get(vcpu) {
                        e.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                });
            } else {
                tb.register_execute_callback(move |vcpu| {
                    counters.add(vcpu as usize, class, insns);
                    exits.guest(vcpu as usize);
                });
            }
            Ok(())
        }
    }

    register!(Profile::default());
}
