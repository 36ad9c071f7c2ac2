package config

import (
	"strings"
	"testing"
)

func TestSizeLimits(t *testing.T) {
	const base = `state_dir = "/var/lib/chartsync"
[git]
url = "https://git.example.org/charts"
[[repository]]
name = "stable"
charts = ["charts/*"]
store = "main"
`
	const store = `
[store.main]
type = "local"
path = "/srv/charts"
`
	tests := []struct {
		name       string
		keys       string
		index, pkg ByteSize
		wantErr    string
	}{
		{"defaults", "", 0, 0, ""},
		{"integers", "max_index_size = 1000\nmax_package_size = 2000\n", 1000, 2000, ""},
		{"units", "max_index_size = \"128MiB\"\nmax_package_size = \"512 KiB\"\n", 128 << 20, 512 << 10, ""},
		{"gib and bytes", "max_index_size = \"1GiB\"\nmax_package_size = \"99B\"\n", 1 << 30, 99, ""},
		{"bad unit", "max_index_size = \"64MB\"\n", 0, 0, `size "64MB"`},
		{"not a number", "max_package_size = \"lots\"\n", 0, 0, `size "lots"`},
		{"negative", "max_package_size = -1\n", 0, 0, "must not be negative"},
		{"overflow", "max_index_size = \"99999999999GiB\"\n", 0, 0, `size "99999999999GiB"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(base + tt.keys + store))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			case tt.wantErr != "":
				return
			}
			r := c.Repositories[0]
			if r.MaxIndexSize != tt.index || r.MaxPackageSize != tt.pkg {
				t.Errorf("sizes = %d, %d; want %d, %d", r.MaxIndexSize, r.MaxPackageSize, tt.index, tt.pkg)
			}
		})
	}
}
