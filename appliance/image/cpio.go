package image

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
)

// cpioEntry is one file of an initramfs. Mode holds the file type bits
// (0o100000 regular, 0o040000 directory, 0o020000 character device) and
// the permissions.
type cpioEntry struct {
	Name         string
	Mode         uint32
	Data         []byte
	Major, Minor uint32 // device numbers of a character device
}

const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeChar = 0o020000
)

// writeCPIO writes entries as a newc archive. Inode numbers count up from
// 1 and every mtime is 0, so the archive depends on the entries only.
// Go's cpio packages were not used: the one evaluated does not write the
// rdev fields a device node needs.
func writeCPIO(w io.Writer, entries []cpioEntry) error {
	var buf bytes.Buffer
	pad := func() {
		for buf.Len()%4 != 0 {
			buf.WriteByte(0)
		}
	}
	write := func(ino int, e cpioEntry) {
		nlink := 1
		if e.Mode&0o170000 == modeDir {
			nlink = 2
		}
		fmt.Fprintf(&buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, e.Mode, 0, 0, nlink, 0, len(e.Data), 0, 0, e.Major, e.Minor, len(e.Name)+1, 0)
		buf.WriteString(e.Name)
		buf.WriteByte(0)
		pad()
		buf.Write(e.Data)
		pad()
	}
	for i, e := range entries {
		write(i+1, e)
	}
	write(0, cpioEntry{Name: "TRAILER!!!"})
	_, err := w.Write(buf.Bytes())
	return err
}

// initramfs returns the gzip-compressed newc archive of entries. The gzip
// header carries no name and mtime 0. The default level: -9 made the
// archive 0.7% smaller and took 2.3 times as long (a 30 MB eddy).
func initramfs(entries []cpioEntry) ([]byte, error) {
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if err := writeCPIO(zw, entries); err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	return out.Bytes(), nil
}
