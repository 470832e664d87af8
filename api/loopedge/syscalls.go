package loopedge

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The calls here never block: the sockets are non-blocking and the poll's
// timeout is zero. So they go to the kernel without telling the scheduler
// (unix.RawSyscall), which unix.Read, unix.Write and unix.EpollWait do on
// every call so that sysmon may hand the thread's P to another goroutine
// (docs/BENCHMARKS.md, "An event-loop floor").

// readRaw is read(2) on a non-blocking fd.
func readRaw(fd int, buf []byte) (int, error) {
	n, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(buf))), uintptr(len(buf)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// writeRaw is write(2) on a non-blocking fd.
func writeRaw(fd int, buf []byte) (int, error) {
	n, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(buf))), uintptr(len(buf)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// pollNow is epoll_pwait(2) with a zero timeout: the events ready now.
func pollNow(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(unsafe.SliceData(events))), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
