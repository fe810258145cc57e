package policies

import (
	"fmt"
	"math/big"
	"strings"
)

// sizeUnits maps a lower-cased unit to its multiplier. Units are
// case-insensitive and always mean bytes (never bits): a unit without "i"
// is decimal (KB = 1000, MB = 10^6, as disks and NAS quotas are sold), one
// with "i" is binary (KiB = 1024, MiB = 2^20). A bare letter (K, M, G, T,
// P, E) is the decimal unit.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "kib": 1 << 10, "ki": 1 << 10,
	"m": 1e6, "mb": 1e6, "mib": 1 << 20, "mi": 1 << 20,
	"g": 1e9, "gb": 1e9, "gib": 1 << 30, "gi": 1 << 30,
	"t": 1e12, "tb": 1e12, "tib": 1 << 40, "ti": 1 << 40,
	"p": 1e15, "pb": 1e15, "pib": 1 << 50, "pi": 1 << 50,
	"e": 1e18, "eb": 1e18, "eib": 1 << 60, "ei": 1 << 60,
}

// ParseSize parses a size in bytes: a non-negative number, optionally with
// a decimal fraction, and an optional unit, e.g. "4096", "512KiB",
// "1000MB", "1.5GB", "10 GB". See sizeUnits for the units. A fractional
// result is rounded down to a whole byte; a fraction of a single byte
// ("1.5" or "1.5B") is refused.
func ParseSize(s string) (int64, error) {
	fail := func(format string, args ...any) (int64, error) {
		return 0, fmt.Errorf("invalid size %q: %s", s, fmt.Sprintf(format, args...))
	}
	text := strings.TrimSpace(s)
	if text == "" {
		return fail("empty (write e.g. 4096, 512KiB, 1000MB, 1.5GB)")
	}
	if text[0] == '-' {
		return fail("must not be negative")
	}
	i := 0
	for i < len(text) && (text[i] >= '0' && text[i] <= '9' || text[i] == '.') {
		i++
	}
	num := text[:i]
	if num == "" || num == "." || strings.Count(num, ".") > 1 {
		return fail("expected a number at the start")
	}
	unit := strings.ToLower(strings.TrimSpace(text[i:]))
	mult, ok := sizeUnits[unit]
	if !ok {
		return fail("unknown unit %q (use B, KB, MB, GB, TB, or KiB, MiB, GiB, TiB)", strings.TrimSpace(text[i:]))
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return fail("bad number %q", num)
	}
	if mult == 1 && !r.IsInt() {
		return fail("a size in bytes must be a whole number")
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	n := new(big.Int).Quo(r.Num(), r.Denom()) // rounds toward zero, i.e. down
	if !n.IsInt64() {
		return fail("too large")
	}
	return n.Int64(), nil
}

// FormatSize renders n bytes for people, in the largest binary unit that
// keeps at least one whole unit, with up to one decimal ("1.5 GiB",
// "512 KiB", "17 B"). It is for display only; it does not round-trip.
func FormatSize(n int64) string {
	if n < 0 {
		// -(n+1) cannot overflow, even for math.MinInt64.
		return "-" + formatUnsignedSize(uint64(-(n+1))+1)
	}
	return formatUnsignedSize(uint64(n))
}

func formatUnsignedSize(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v := float64(n)
	u := 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%d B", n)
	}
	s := fmt.Sprintf("%.1f", v)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + units[u]
}
