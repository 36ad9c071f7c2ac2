package store

import "context"

// Versioned is implemented by stores that keep the earlier versions of
// objects that were overwritten (a Swift container with
// X-History-Location or X-Versions-Location). It is not part of Store:
// the publisher uses it, when present, only to put back the bytes an index
// lists for a package that was replaced.
type Versioned interface {
	// RestoreVersion looks through the kept earlier versions of key, newest
	// first, for one whose bytes satisfy match, and writes it back over key.
	// It reports whether it restored one; false with a nil error means the
	// store keeps no versions here, or none matched.
	RestoreVersion(ctx context.Context, key string, match func(data []byte) bool) (bool, error)
}

// Unwrapper is implemented by stores that wrap another one (such as the
// metrics wrapper), so that optional interfaces stay reachable.
type Unwrapper interface {
	Unwrap() Store
}

// AsVersioned returns s, or the store s wraps, as a Versioned store.
func AsVersioned(s Store) (Versioned, bool) {
	for {
		if v, ok := s.(Versioned); ok {
			return v, true
		}
		u, ok := s.(Unwrapper)
		if !ok {
			return nil, false
		}
		s = u.Unwrap()
	}
}
