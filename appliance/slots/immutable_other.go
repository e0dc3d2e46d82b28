//go:build !linux

package slots

func clearImmutable(string) error { return nil }
