package config

import (
	"fmt"
	"strconv"
	"strings"
)

// ByteSize is a size in bytes, written in the config as an integer (bytes)
// or a string with a binary unit: "512KiB", "64 MiB", "1GiB". 0 means the
// default.
type ByteSize int64

var sizeUnits = []struct {
	suffix string
	factor int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}}

// UnmarshalTOML implements toml.Unmarshaler.
func (s *ByteSize) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		*s = ByteSize(v)
		return nil
	case string:
		text := strings.TrimSpace(v)
		for _, u := range sizeUnits {
			if num, ok := strings.CutSuffix(text, u.suffix); ok {
				n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
				if err != nil || n > (1<<62)/u.factor {
					break
				}
				*s = ByteSize(n * u.factor)
				return nil
			}
		}
		return fmt.Errorf("size %q: want bytes as an integer, or a number with KiB, MiB or GiB", v)
	}
	return fmt.Errorf("size %v: want bytes as an integer, or a string such as \"64MiB\"", v)
}
