package policies

import (
	"math"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
	}{
		{"plain bytes", "4096", 4096},
		{"B suffix", "4096B", 4096},
		{"MB is decimal", "1000MB", 1_000_000_000},
		{"GB is decimal", "10GB", 10_000_000_000},
		{"TB is decimal", "1TB", 1_000_000_000_000},
		{"KiB is binary", "512KiB", 512 * 1024},
		{"GiB is binary", "1GiB", 1 << 30},
		{"fraction of a unit", "1.5GB", 1_500_000_000},
		{"fraction is rounded down to a byte", "1.1KiB", 1126},
		{"units are case-insensitive", "1gib", 1 << 30},
		{"lower-case mb is megabytes, not millibits", "2mb", 2_000_000},
		{"bare letter is the decimal unit", "3K", 3000},
		{"Ki without B", "1Ki", 1024},
		{"space before the unit", "10 GB", 10_000_000_000},
		{"surrounding space", " 7 ", 7},
		{"zero", "0", 0},
		{"leading fraction point", ".5KB", 500},
		{"largest exact", "7EiB", 7 << 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if err != nil {
				t.Fatalf("ParseSize(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseSizeErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", `invalid size "": empty`},
		{"unknown unit is named", "10XB", `invalid size "10XB": unknown unit "XB"`},
		{"bits are not a unit", "1Mbit", `unknown unit "Mbit"`},
		{"no number", "GB", "expected a number"},
		{"negative", "-1GB", "must not be negative"},
		{"fraction of a byte", "1.5", "whole number"},
		{"fraction of a byte with B", "1.5B", "whole number"},
		{"two decimal points", "1.2.3GB", "expected a number"},
		{"too large for int64", "8EiB", "too large"},
		{"much too large", "99999999999999999999999TB", "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSize(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseSize(%q) error = %v, want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestFormatSizeUsesBinaryUnits(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1 KiB"},
		{1536, "1.5 KiB"},
		{1 << 30, "1 GiB"},
		{-2048, "-2 KiB"},
		{math.MinInt64, "-8 EiB"},
	}
	for _, tt := range tests {
		if got := FormatSize(tt.in); got != tt.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
