package serial

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	goserial "github.com/jacobsa/go-serial/serial"
)

// readTimeout is how long one read of the port waits for a first byte:
// the reader checks between reads whether it should stop, since closing a
// blocking descriptor does not end a read in progress.
const readTimeout = 100 * time.Millisecond

// errHungUp is the error of a port that returns end-of-file at once,
// again and again, as a hung-up terminal does.
var errHungUp = errors.New("port hung up")

// port is an open serial port.
type port struct {
	f    io.ReadWriteCloser
	name string
}

// openPort opens and configures the device.
func openPort(s *settings) (*port, error) {
	fi, err := os.Stat(s.Device)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", s.Device, err)
	}
	if fi.Mode()&os.ModeCharDevice == 0 {
		// go-serial would open it and then fail the terminal ioctl.
		return nil, fmt.Errorf("open %s: not a serial device (%s)", s.Device, fi.Mode().Type())
	}
	parity := goserial.PARITY_NONE
	switch s.Parity {
	case ParityEven:
		parity = goserial.PARITY_EVEN
	case ParityOdd:
		parity = goserial.PARITY_ODD
	}
	f, err := goserial.Open(goserial.OpenOptions{
		PortName:   s.Device,
		BaudRate:   uint(s.BaudRate),
		DataBits:   uint(s.DataBits),
		StopBits:   uint(s.StopBits),
		ParityMode: parity,
		// VMIN 0, VTIME 1: a read returns what has arrived, or nothing
		// after readTimeout.
		InterCharacterTimeout:  uint(readTimeout / time.Millisecond),
		MinimumReadSize:        0,
		Rs485Enable:            s.KernelRS485,
		Rs485RtsHighDuringSend: s.KernelRS485,
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", s.Device, err)
	}
	return &port{f: f, name: s.Device}, nil
}

// read reads the port until quit is closed or reading fails, and hands
// every chunk received to out. It returns the read error, or nil after
// quit.
func (p *port) read(quit <-chan struct{}, out chan<- []byte) error {
	buf := make([]byte, 1024)
	fast := 0
	for {
		select {
		case <-quit:
			return nil
		default:
		}
		start := time.Now()
		n, err := p.f.Read(buf)
		if n > 0 {
			fast = 0
			chunk := make([]byte, n)
			copy(chunk, buf[:n])
			select {
			case out <- chunk:
			case <-quit:
				return nil
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF) && n == 0:
			// Nothing within readTimeout; but a hung-up terminal returns
			// end-of-file at once, every time.
			if time.Since(start) < readTimeout/4 {
				if fast++; fast >= 3 {
					return fmt.Errorf("read %s: %w", p.name, errHungUp)
				}
			} else {
				fast = 0
			}
		case errors.Is(err, io.EOF):
		default:
			return fmt.Errorf("read %s: %w", p.name, err)
		}
	}
}

// write sends one line.
func (p *port) write(b []byte) error {
	if _, err := p.f.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", p.name, err)
	}
	return nil
}

func (p *port) close() error { return p.f.Close() }
