//! One .dts fixture per validation rule: the exact list of findings (node
//! path + key words of the message) and the guests that survive.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ferrovisor_config::{ConfigError, LoadOutcome};
use support::load;

const QEMU: &[u8] = include_bytes!("fixtures/qemu-virt-gicv3.dtb");
const QEMU_SMMU: &[u8] = include_bytes!("fixtures/qemu-virt-gicv3-smmuv3.dtb");
const SMALL: &[u8] = include_bytes!("fixtures/host-small.dtb");
const MANY_CPUS: &[u8] = include_bytes!("fixtures/host-many-cpus.dtb");
const BUNDLE: &[&str] = &["linux/Image", "linux/initrd.gz", "guests/probe.bin"];

macro_rules! rule {
    ($name:literal) => {
        ($name, include_bytes!(concat!("fixtures/rule-", $name, ".dtb")).as_slice())
    };
}

/// (path, words that must all appear in the message)
type Expect<'a> = &'a [(&'a str, &'a [&'a str])];

struct Case<'a> {
    fixture: (&'a str, &'a [u8]),
    host: &'a [u8],
    errors: Expect<'a>,
    warnings: Expect<'a>,
    accepted: &'a [&'a str],
}

fn render(list: &[ConfigError]) -> String {
    list.iter().map(|e| format!("  {e}\n")).collect()
}

fn matches(found: &[ConfigError], expected: Expect<'_>) -> bool {
    found.len() == expected.len()
        && found
            .iter()
            .zip(expected)
            .all(|(f, (path, words))| f.path == *path && words.iter().all(|w| f.message.contains(w)))
}

fn check(case: &Case<'_>) -> Result<(), String> {
    let (name, dtb) = case.fixture;
    let out: LoadOutcome = load(case.host, dtb, BUNDLE);
    let accepted: Vec<&str> = out.config.guests.iter().map(|g| g.name.as_str()).collect();
    if !matches(&out.errors, case.errors)
        || !matches(&out.warnings, case.warnings)
        || accepted != case.accepted
    {
        return Err(format!(
            "{name}: accepted {accepted:?} (expected {:?})\n errors:\n{} warnings:\n{}",
            case.accepted,
            render(&out.errors),
            render(&out.warnings)
        ));
    }
    for e in &out.errors {
        assert!(!e.hint.is_empty(), "{name}: empty hint in {e}");
        assert!(!e.to_string().contains('\n'), "{name}: multi-line {e}");
    }
    Ok(())
}

/// The warnings of guest g passing /virtio_mmio@a003e00 with the ack.
const SUBPAGE_G: Expect<'static> = &[
    (
        "/guests/g/blk",
        &["passing /virtio_mmio@a003e00 through also exposes /virtio_mmio@a003000, /virtio_mmio@a003200, /virtio_mmio@a003400, /virtio_mmio@a003600, /virtio_mmio@a003800, /virtio_mmio@a003a00, /virtio_mmio@a003c00 (same 4 KiB page) to guest g"],
    ),
    ("/guests/g/blk", &["guest g gets DMA-capable host device /virtio_mmio@a003e00 without IOMMU protection"]),
];

fn case<'a>(fixture: (&'a str, &'a [u8]), errors: Expect<'a>, accepted: &'a [&'a str]) -> Case<'a> {
    Case { fixture, host: QEMU, errors, warnings: &[], accepted }
}

#[test]
fn every_rule_reports_path_and_message() {
    let cases = [
        case(rule!("wrong-root"), &[("/", &["root compatible is \"linux,dummy-virt\"", "not a ferrovisor config"])], &[]),
        case(rule!("no-guests"), &[("/guest", &["unknown node \"guest\""]), ("/", &["no /guests node"])], &[]),
        case(rule!("root-extras"), &[("/", &["unknown property \"colour\""]), ("/chosen", &["unknown node \"chosen\""])], &["g"]),
        case(rule!("unknown-property"), &[("/guests/g", &["unknown property \"colour\""])], &[]),
        case(
            rule!("unknown-node"),
            &[("/guests/g/thing", &["unknown node \"thing\""]), ("/guests/g/uart@9000000/extra", &["unknown node \"extra\""])],
            &[],
        ),
        case(
            rule!("missing-property"),
            &[
                ("/guests/g", &["missing required property \"vcpus\""]),
                ("/guests/g/memory@40000000", &["missing required property \"size\""]),
                ("/guests/g", &["no memory"]),
            ],
            &[],
        ),
        case(
            rule!("property-size"),
            &[
                ("/guests/g", &["\"vcpus\" must be one 32-bit cell", "8 bytes"]),
                ("/guests/g", &["\"kernel\" holds numbers (1 cell), but must be one non-empty string"]),
                ("/guests/g/memory@40000000", &["\"size\" must be 2 cells", "found 4 bytes"]),
                ("/guests/g", &["no memory"]),
            ],
            &[],
        ),
        case(
            rule!("guest-compatible"),
            &[("/guests/g", &["compatible must be \"ferrovisor,guest\""]), ("/guests/h", &["missing required property \"compatible\""])],
            &[],
        ),
        case(
            rule!("bad-name"),
            &[
                ("/guests/Linux_Guest", &["guest name \"Linux_Guest\" is not valid"]),
                ("/guests/a-very-long-guest-name-that-is-too-long", &["is not valid"]),
            ],
            &["ok_guest-1"],
        ),
        case(rule!("vcpus-range"), &[("/guests/zero", &["vcpus = <0> is out of range"]), ("/guests/nine", &["vcpus = <9>"])], &[]),
        case(
            rule!("affinity"),
            &[("/guests/g", &["physical CPU 4 does not exist", "4 CPUs"]), ("/guests/g", &["physical CPU 0 twice"])],
            &[],
        ),
        Case {
            warnings: &[("/guests/d", &["scmi-channel-addr is set, but no pass-through device has a clock, power domain or reset"])],
            ..case(
                rule!("scmi"),
                &[
                    ("/guests/b/gpio", &["power domain \"periph\" already belongs to guest a (/guests/a/rtc)"]),
                    ("/guests/c/gpio", &["scmi-reset \"GPIO!\" is not a valid name"]),
                    ("/guests/c/raw", &["scmi-power-domain and scmi-reset need a host device"]),
                    ("/guests/c", &["scmi-channel-addr 0x40000800 is not 4 KiB aligned"]),
                    ("/guests/c", &["the SCMI channel at 0x40000800", "overlaps RAM 0x40000000-0x40ffffff"]),
                    ("/guests/c/raw", &["already passed through to guest a"]),
                    ("/guests/c/gpio", &["host device /pl061@9030000 is already passed through to guest b"]),
                ],
                &["a", "d"],
            )
        },
        Case {
            host: QEMU_SMMU,
            warnings: &[("/guests/d", &["pci-ecam and pci-window are ignored: the guest has no pci-function"])],
            ..case(
                rule!("pci"),
                &[
                    ("/guests/c/pin", &["intx \"E\" is not a pin"]),
                    ("/guests/c/typo", &["pci-function \"0:2\" is not a PCI address"]),
                    ("/guests/b/edu", &["pci-function 00:02.0 is already passed through to guest a by /guests/a/edu"]),
                    ("/guests/b/other", &["host INTID 38 is already forwarded to guest a by /guests/a/nvme"]),
                    ("/guests/c/bridged", &["pci-function 01:00.0 is not on bus 0"]),
                    ("/guests/c/placed", &["property \"guest-physical-addr\" is not for a PCIe function"]),
                    ("/guests/c/bridge", &["host device /pcie@10000000 is the PCIe host bridge", "owned by the hypervisor"]),
                    ("/guests/c/lonely", &["pci-function 00:04.1 is shown without function 0 of its device"]),
                    ("/guests/c", &["the virtual PCIe ECAM 0x40000000-0x400fffff (pci-ecam) overlaps RAM"]),
                ],
                &["a", "d"],
            )
        },
        Case {
            fixture: rule!("dma-registers"),
            host: QEMU,
            errors: &[
                ("/guests/bad/odd", &["property \"dma-registers\" must hold triples"]),
                ("/guests/noack/blk", &["reads buffer addresses from descriptors in guest memory"]),
                ("/guests/bad/entries", &["entry 1 <0x82 0x84 0x10>: offsets must be multiples of 4"]),
                ("/guests/bad/entries", &["entry 2 <0x90 0x90 0x10>: the low and high halves are the same register"]),
                ("/guests/bad/entries", &["entry 3 <0x80 0x200 0x10>: a register lies outside the device's registers 0xa000e00-0xa000fff"]),
                ("/guests/bad/entries", &["entry 4 <0xa0 0xa4 0x0>: length 0"]),
            ],
            warnings: &[
                ("/guests/good/blk", &["with only its DMA address registers checked", "acknowledged by dma-unprotected-ack"]),
                ("/guests/good/rtc", &["dma-registers is ignored: host device /pl031@9010000 cannot master DMA"]),
                ("/guests/bad/odd", &["also exposes"]),
                ("/guests/bad/odd", &["without IOMMU protection"]),
            ],
            accepted: &["good"],
        },
        Case {
            fixture: rule!("dma-registers-limits"),
            host: QEMU,
            errors: &[
                ("/guests/bad/pages", &["entry 2 <0x1080 0x1084 0x10>: the DMA registers must all lie in one 4 KiB page"]),
                ("/guests/bad/spare", &["dma-registers cannot be combined with standby"]),
                ("/guests/bad/many", &["dma-registers names 9 register pairs; at most 8"]),
            ],
            warnings: &[],
            accepted: &[],
        },
        case(
            rule!("pci-no-smmu"),
            &[("/guests/g/edu", &["pci-function 00:02.0: no SMMU translates its DMA"])],
            &[],
        ),
        case(
            rule!("standby"),
            &[
                ("/guests/d/raw", &["standby is only for a host device"]),
                ("/guests/c/rtc", &["host device /pl031@9010000 is already passed through to guest a"]),
                ("/guests/c/rtc", &["power domain \"rtcpd\" already belongs to guest a"]),
                ("/guests/c/rtc", &["reset line \"rtcrst\" already belongs to guest a"]),
                ("/guests/e/rtc", &["power domain \"rtcpd\" moves with this device between guests, but /guests/e/gpio is in it too"]),
                ("/guests/e/gpio", &["power domain \"rtcpd\" already belongs to guest a"]),
                ("/guests/d/raw", &["its host page 0x9030000-0x9030fff is already passed through to guest e"]),
            ],
            &["a", "b"],
        ),
        Case {
            host: MANY_CPUS,
            ..case(
                rule!("affinity-limit"),
                &[("/guests/g", &["physical CPU 9 is not used by ferrovisor", "first 8 CPUs"])],
                &[],
            )
        },
        case(
            rule!("memory-alignment"),
            &[
                ("/guests/g/memory@40000800", &["guest-physical-addr 0x40000800 is not 4 KiB aligned"]),
                ("/guests/g/memory@50000000", &["memory size 0x1800 is not a multiple of 4 KiB"]),
                ("/guests/g/memory@60000000", &["memory size is 0"]),
            ],
            &[],
        ),
        case(rule!("no-memory"), &[("/guests/g", &["guest has no memory"])], &[]),
        case(
            rule!("layout-overlap"),
            &[
                ("/guests/g/memory@40000000", &["RAM 0x40000000-0x40ffffff overlaps RAM 0x40800000-0x417fffff of /guests/g/memory@40800000"]),
                ("/guests/g/uart@9000000", &["emulated UART at 0x9000000 overlaps RAM 0x9000000-0x901ffff"]),
                ("/guests/g/rtc", &["pass-through window 0x9010000-0x9010fff overlaps RAM"]),
            ],
            &[],
        ),
        case(
            rule!("vgic-overlap"),
            &[
                ("/guests/g/memory@8000000", &["overlaps the virtual GIC distributor"]),
                ("/guests/g/memory@8000000", &["overlaps the virtual GIC redistributors"]),
            ],
            &[],
        ),
        case(rule!("identity-outside-ram"), &[("/guests/g/memory@30000000", &["not inside host RAM", "0x40000000-0xbfffffff"])], &[]),
        case(
            rule!("identity-shared"),
            &[("/guests/second/memory@50800000", &["overlaps identity memory", "of guest first", "/guests/first/memory@50000000"])],
            &["first"],
        ),
        case(
            rule!("host-device-missing"),
            &[
                ("/guests/g/nope", &["host device /pl099@9090000 is not a memory-mapped device of the host DT"]),
                ("/guests/g/timer", &["host device /timer is not a memory-mapped device"]),
            ],
            &[],
        ),
        case(rule!("raw-not-device"), &[("/guests/g/hole", &["raw region 0x9100000-0x9100fff is not a device of the host DT"])], &[]),
        case(rule!("raw-in-ram"), &[("/guests/g/ram", &["raw region 0x80000000-0x80000fff lies in host RAM"])], &[]),
        case(rule!("raw-gic"), &[("/guests/g/gicd", &["covers the GIC distributor (/intc@8000000)", "owned by the hypervisor"])], &[]),
        Case {
            host: QEMU_SMMU,
            ..case(
                rule!("owned-smmu"),
                &[
                    ("/guests/g/smmu", &["host device /smmuv3@9050000 is the SMMU, owned by the hypervisor"]),
                    ("/guests/g/its", &["host device /intc@8000000/its@8080000 is the GIC ITS"]),
                ],
                &[],
            )
        },
        case(
            rule!("shared-device"),
            &[("/guests/linux1/rtc", &["host device /pl031@9010000 is already passed through to guest linux0"])],
            &["linux0"],
        ),
        case(rule!("twice-in-guest"), &[("/guests/g/rtc2", &["already passed through to this guest by /guests/g/rtc"])], &[]),
        Case {
            host: SMALL,
            ..case(rule!("shared-irq"), &[("/guests/b/dual1", &["host INTID 41 is already forwarded to guest a by /guests/a/dual0"])], &["a"])
        },
        Case {
            host: SMALL,
            ..case(rule!("irq-twice-in-guest"), &[("/guests/g/dual1", &["host INTID 41 is already forwarded to this guest by /guests/g/dual0"])], &[])
        },
        case(
            rule!("irq-map"),
            &[
                ("/guests/g/rtc", &["host INTID 40 is not an interrupt of /pl031@9010000 (its interrupts: 34)"]),
                ("/guests/g/rtc", &["guest INTID 33 is already used by /guests/g/uart@9000000"]),
                ("/guests/g/gpio", &["guest INTID 27 is not a shared peripheral interrupt"]),
            ],
            &[],
        ),
        case(rule!("irq-map-odd"), &[("/guests/g/rtc", &["\"interrupt-map\" must hold pairs"])], &[]),
        case(rule!("vuart-irq"), &[("/guests/g/uart@9000000", &["guest INTID 30 is not a shared peripheral interrupt"])], &[]),
        case(rule!("two-vuarts"), &[("/guests/g/uart@9001000", &["at most one emulated UART", "/guests/g/uart@9000000"])], &[]),
        Case {
            host: SMALL,
            ..case(rule!("ppi-device"), &[("/guests/g/ppi", &["per-CPU interrupt INTID 23", "cannot be passed through"])], &[])
        },
        case(
            rule!("source-conflict"),
            &[
                ("/guests/g/both", &["host-device, host-physical-addr and pci-function are mutually exclusive"]),
                ("/guests/g/neither", &["missing host-device, host-physical-addr or pci-function"]),
                ("/guests/g/sized", &["\"size\" is only for a raw region"]),
                ("/guests/g/nosize", &["missing required property \"size\""]),
            ],
            &[],
        ),
        Case {
            warnings: &[
                ("/guests/g/virtio", &["passing /virtio_mmio@a003e00 through also exposes /virtio_mmio@a003000,"]),
                ("/guests/g/virtio", &["guest g gets DMA-capable host device /virtio_mmio@a003e00"]),
            ],
            ..case(
                rule!("pt-alignment"),
                &[
                    ("/guests/g/virtio", &["guest-physical-addr 0xc000000 does not keep the offset 0xe00 that host device /virtio_mmio@a003e00 (0xa003e00) has in its 4 KiB page"]),
                    ("/guests/g/rtc", &["guest-physical-addr 0x20000800 is not 4 KiB aligned"]),
                    ("/guests/g/raw", &["raw region 0x9030000-0x90307ff: size 0x800 is not a multiple of 4 KiB"]),
                ],
                &[],
            )
        },
        Case { warnings: SUBPAGE_G, ..case(rule!("subpage"), &[], &["g"]) },
        Case { warnings: SUBPAGE_G, ..case(rule!("subpage-remap"), &[], &["g"]) },
        Case {
            warnings: &[
                ("/guests/a/blk", &["passing /virtio_mmio@a003e00 through also exposes"]),
                ("/guests/a/blk", &["guest a gets DMA-capable host device /virtio_mmio@a003e00"]),
                ("/guests/b/net", &["passing /virtio_mmio@a003000 through also exposes /virtio_mmio@a003200,", "/virtio_mmio@a003e00 (same 4 KiB page) to guest b"]),
                ("/guests/b/net", &["guest b gets DMA-capable host device /virtio_mmio@a003000"]),
            ],
            ..case(
                rule!("subpage-shared"),
                &[("/guests/b/net", &["its host page 0xa003000-0xa003fff is already passed through to guest a by /guests/a/blk (host device /virtio_mmio@a003e00)"])],
                &["a"],
            )
        },
        Case {
            warnings: &[
                ("/guests/g/blk", &["passing /virtio_mmio@a003e00 through also exposes"]),
                ("/guests/g/blk", &["DMA-capable host device /virtio_mmio@a003e00"]),
                ("/guests/g/net", &["passing /virtio_mmio@a003c00 through also exposes"]),
                ("/guests/g/net", &["DMA-capable host device /virtio_mmio@a003c00"]),
                ("/guests/g/page", &["DMA-capable raw region 0xa003000-0xa003fff"]),
            ],
            ..case(
                rule!("subpage-twice"),
                &[
                    ("/guests/g/net", &["its host page 0xa003000-0xa003fff is already passed through to this guest by /guests/g/blk (host device /virtio_mmio@a003e00)"]),
                    ("/guests/g/page", &["its host page 0xa003000-0xa003fff is already passed through to this guest by /guests/g/blk"]),
                ],
                &[],
            )
        },
        Case {
            host: SMALL,
            ..case(
                rule!("subpage-owned"),
                &[("/guests/g/tiny", &["the 4 KiB page of host device /soc/tiny@20400 also holds the hypervisor console UART (/soc/serial@20000), owned by the hypervisor"])],
                &[],
            )
        },
        case(rule!("pt-remap"), &[], &["g"]),
        Case {
            host: SMALL,
            ..case(rule!("pt-in-ram"), &[("/guests/g/shm", &["the 4 KiB pages of host device /shm@4f000000 overlap host RAM 0x40000000-0x7fffffff"])], &[])
        },
        case(rule!("dma-no-ack"), &[("/guests/g/virtio", &["raw region 0xa000000-0xa000fff can master DMA and no IOMMU protects it"])], &[]),
        case(
            rule!("dma-ack-not-identity"),
            &[("/guests/g/virtio", &["dma-unprotected-ack needs all memory of guest g identity-mapped", "/guests/g/memory@40000000 is not"])],
            &[],
        ),
        Case {
            warnings: &[("/guests/g/virtio", &["guest g gets DMA-capable raw region 0xa000000-0xa000fff without IOMMU protection"])],
            ..case(rule!("dma-ack"), &[], &["g"])
        },
        Case {
            warnings: &[("/guests/g/rtc", &["dma-unprotected-ack is ignored", "cannot master DMA"])],
            ..case(rule!("dma-ack-useless"), &[], &["g"])
        },
        Case { host: SMALL, ..case(rule!("iommu"), &[], &["g"]) },
        case(
            rule!("ram-budget"),
            &[("/guests/big1/memory@40000000", &["no free host RAM for memory 0x40000000-0x9fffffff (0x60000000 bytes)", "the largest free range is"])],
            &["big0", "small"],
        ),
        case(
            rule!("guest-too-big"),
            &[("/guests/huge", &["guest huge needs 0x80000000 bytes of RAM, more than the", "bytes of host RAM there are for guests"])],
            &["ok"],
        ),
        case(
            rule!("identity-hypervisor"),
            &[
                ("/guests/overhyp/memory@40000000", &["identity memory 0x40000000-0x40ffffff overlaps the hypervisor at 0x40000000-0x40dfffff"]),
                ("/guests/overbundle/memory@47000000", &["identity memory 0x47000000-0x48ffffff overlaps the boot bundle at 0x48000000-0x49ffffff"]),
            ],
            &["fine"],
        ),
        case(
            rule!("intid-range"),
            &[
                ("/guests/g/uart@9000000", &["guest INTID 500 is beyond the virtual GIC, which implements 224 SPIs (INTID 32 to 255)"]),
                ("/guests/g/rtc", &["guest INTID 300 is beyond the virtual GIC"]),
            ],
            &["edge"],
        ),
        case(
            rule!("ipa-limit"),
            &[
                ("/guests/g/memory@7ffff00000", &["RAM 0x7ffff00000-0x80000fffff ends past the guest-physical address space, which stops at 0x8000000000 (512 GiB)"]),
                ("/guests/g/rtc", &["the pass-through window 0x8000000000-0x8000000fff ends past the guest-physical address space"]),
            ],
            &[],
        ),
        case(
            rule!("property-type"),
            &[
                ("/guests/g", &["property \"vcpus\" is a string (\"two\"), but must be one 32-bit cell"]),
                ("/guests/g", &["property \"kernel\" holds numbers (2 cells), but must be one non-empty string"]),
                ("/guests/g/uart@9000000", &["property \"guest-physical-addr\" is a string (\"0x09000000\"), but must be 2 cells <high low>"]),
            ],
            &[],
        ),
        case(
            rule!("raw-unaligned"),
            &[("/guests/g/gpio", &["raw region 0x9030800-0x90317ff: host-physical-addr 0x9030800 is not 4 KiB aligned"])],
            &[],
        ),
        case(
            rule!("too-many-regions"),
            &[("/guests/g/memory@41000000", &["more than 16 memory regions in guest g"])],
            &[],
        ),
        Case {
            errors: &[
                ("/guests/g32", &["guest g32 is guest number 33, but a config has at most 32 guests"]),
                ("/guests/g33", &["guest g33 is guest number 34, but a config has at most 32 guests"]),
            ],
            ..case(rule!("too-many-guests"), &[], &[
                "g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8", "g9", "g10", "g11", "g12", "g13", "g14", "g15",
                "g16", "g17", "g18", "g19", "g20", "g21", "g22", "g23", "g24", "g25", "g26", "g27", "g28", "g29", "g30", "g31",
            ])
        },
        case(
            rule!("heap"),
            &[
                ("/guests/s16", &["guest s16 needs about", "KiB of hypervisor heap (33 stage-2 tables, 1 vCPU(s), 16 memory and pass-through nodes), but only"]),
                ("/guests/s17", &["guest s17 needs about"]),
                ("/guests/s18", &["guest s18 needs about"]),
                ("/guests/s19", &["guest s19 needs about"]),
            ],
            &["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15"],
        ),
        case(
            rule!("images"),
            &[("/guests/g", &["initrd \"missing.gz\" is not in the boot bundle"]), ("/guests/g", &["dtb \"custom.dtb\" is not in the boot bundle"])],
            &[],
        ),
    ];
    let failures: Vec<String> = cases.iter().filter_map(|c| check(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_rule_fixture_is_in_the_table() {
    let src = include_str!("rules.rs");
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "dts") {
            let file = path.file_stem().unwrap().to_string_lossy().into_owned();
            let Some(stem) = file.strip_prefix("rule-") else {
                continue;
            };
            let used = src.contains(&format!("rule!(\"{stem}\")")) || stem == "duplicate-name";
            assert!(used, "fixture rule-{stem}.dts has no test");
            let dtb = path.with_extension("dtb");
            assert!(dtb.exists(), "rule-{stem}.dtb is missing: run tests/fixtures/build.sh");
        }
    }
}

#[test]
fn duplicate_guest_names_reject_the_later_guest() {
    // dtc refuses duplicate node names, so patch the compiled blob: both node
    // names are five bytes, "dupe1" becomes "dupe0".
    let mut dtb = include_bytes!("fixtures/rule-duplicate-name.dtb").to_vec();
    let at = dtb.windows(5).position(|w| w == b"dupe1").unwrap();
    dtb[at + 4] = b'0';
    let out = load(QEMU, &dtb, BUNDLE);
    assert_eq!(out.errors.len(), 1, "{}", render(&out.errors));
    assert_eq!(out.errors[0].to_string(), "/guests/dupe0: guest name \"dupe0\" is already used by /guests/dupe0 (hint: give every guest a unique node name)");
    // Both are called dupe0; the first one stays.
    assert_eq!(out.config.guests.len(), 1);
}

#[test]
fn display_is_one_line_path_message_hint() {
    let out = load(QEMU, rule!("shared-device").1, BUNDLE);
    assert_eq!(
        out.errors[0].to_string(),
        "/guests/linux1/rtc: host device /pl031@9010000 is already passed through to guest linux0 (hint: give each device to one guest only; to move it between guests, add standby; to every listing but one (the shell's passthrough assign moves it))"
    );
    assert_eq!(out.errors[0].guest.as_deref(), Some("linux1"));
    let out = load(QEMU, rule!("dma-no-ack").1, BUNDLE);
    assert_eq!(
        out.errors[0].to_string(),
        "/guests/g/virtio: raw region 0xa000000-0xa000fff can master DMA and no IOMMU protects it (hint: without an IOMMU the device can DMA anywhere in host memory, including the hypervisor and other guests; to accept the risk add dma-unprotected-ack; and make all of the guest's memory identity-mapped, or pick a device behind an SMMU)"
    );
    let out = load(QEMU, rule!("wrong-root").1, BUNDLE);
    assert_eq!(
        out.errors[0].to_string(),
        "/: root compatible is \"linux,dummy-virt\", not \"ferrovisor,config-v1\": this is not a ferrovisor config (hint: start the config with compatible = \"ferrovisor,config-v1\"; in the root node)"
    );
    assert_eq!(out.errors[0].guest, None);
    let out = load(QEMU, rule!("unknown-property").1, BUNDLE);
    assert_eq!(
        out.errors[0].to_string(),
        "/guests/g: unknown property \"colour\" (hint: allowed properties here: compatible, vcpus, cpu-affinity, kernel, initrd, dtb, bootargs, scmi-channel-addr, manual-start, pci-ecam, pci-window, #address-cells, #size-cells)"
    );
}

#[test]
fn unusable_inputs_are_config_wide_errors() {
    let out = load(QEMU, b"garbage", BUNDLE);
    assert_eq!(out.errors.len(), 1);
    assert!(
        out.errors[0].to_string().starts_with("/: config DTB is unreadable: malformed DTB"),
        "{}",
        out.errors[0]
    );
    let out = load(b"", rule!("dma-ack").1, BUNDLE);
    assert!(out.config.guests.is_empty());
    assert!(
        out.errors[0].message.starts_with("cannot check guests against the host: host DT:"),
        "{}",
        out.errors[0]
    );
}

#[test]
fn findings_past_the_cap_are_counted_in_one_line() {
    let out = load(QEMU, rule!("findings-cap").1, BUNDLE);
    assert_eq!(out.errors.len() + out.warnings.len(), ferrovisor_config::MAX_FINDINGS + 1);
    let last = out.errors.last().unwrap();
    assert_eq!(last.path, "/");
    assert_eq!(last.message, "50 more error(s) and 0 more warning(s) are not shown");
    assert!(out.config.guests.is_empty());
}

#[test]
fn pass_through_nodes_past_the_limit_are_refused() {
    let out = load(QEMU, rule!("too-many-passthroughs").1, BUNDLE);
    let limit: Vec<&ConfigError> =
        out.errors.iter().filter(|e| e.message.contains("more than 32 pass-through nodes")).collect();
    assert_eq!(limit.len(), 1, "{}", render(&out.errors));
    assert_eq!(limit[0].path, "/guests/g/pt32");
    assert!(out.config.guests.is_empty());
}

#[test]
fn an_oversized_config_dtb_is_refused_before_it_is_read() {
    let mut big = rule!("findings-cap").1.to_vec();
    big.resize(ferrovisor_config::MAX_CONFIG_DTB + 1, 0);
    let out = load(QEMU, &big, BUNDLE);
    assert_eq!(out.errors.len(), 1);
    assert!(out.errors[0].message.contains("more than the 65536 the hypervisor reads"), "{}", out.errors[0]);
}

#[test]
fn planned_ram_is_disjoint_and_clear_of_the_hypervisor() {
    let hyp = support::qemu_hypervisor();
    for (_, dtb) in
        [rule!("ram-budget"), rule!("identity-hypervisor"), rule!("heap"), rule!("too-many-guests")]
    {
        let out = load(QEMU, dtb, BUNDLE);
        let mut taken: Vec<(u64, u64)> = hyp.reserved.iter().map(|(r, _)| (r.base.0, r.end())).collect();
        for g in &out.config.guests {
            for m in &g.memory {
                let (start, end) = (m.host.raw(), m.host.raw() + m.size);
                assert!(start >= 0x4000_0000 && end <= 0xc000_0000, "{} outside RAM", m.path);
                assert!(taken.iter().all(|&(s, e)| end <= s || start >= e), "{} overlaps", m.path);
                if m.identity {
                    assert_eq!(m.host.raw(), m.gpa.0);
                } else if m.size >= ferrovisor_config::RAM_BLOCK {
                    assert_eq!(
                        m.host.raw() % ferrovisor_config::RAM_BLOCK,
                        m.gpa.0 % ferrovisor_config::RAM_BLOCK
                    );
                }
                taken.push((start, end));
            }
        }
    }
}
