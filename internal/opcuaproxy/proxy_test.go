package opcuaproxy

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// echo stands in for gopcua: it echoes what it reads and reports the
// remote address of each connection it accepts.
func echo(t *testing.T) (addr string, remotes <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ch := make(chan string, 16)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ch <- c.RemoteAddr().String()
			wg.Go(func() { _, _ = io.Copy(c, c); c.Close() })
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String(), ch
}

func start(t *testing.T, target string, hooks Hooks) (*Proxy, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := New(ln, target, hooks)
	p.Start()
	t.Cleanup(p.Close)
	return p, ln.Addr().String()
}

func roundTrip(t *testing.T, c net.Conn, msg string) time.Duration {
	t.Helper()
	began := time.Now()
	_, err := c.Write([]byte(msg))
	require.NoError(t, err)
	buf := make([]byte, len(msg))
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, msg, string(buf))
	return time.Since(began)
}

func TestSilentClientBlocksNobody(t *testing.T) {
	target, remotes := echo(t)
	var mu sync.Mutex
	var closed []string
	accepted := 0
	p, addr := start(t, target, Hooks{
		Accepted: func() { mu.Lock(); accepted++; mu.Unlock() },
		Closed:   func(up string) { mu.Lock(); closed = append(closed, up); mu.Unlock() },
	})
	silent, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer silent.Close()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	roundTrip(t, c, "HEL")

	// gopcua saw one connection, the speaking client's, and the proxy
	// names that client behind it.
	up := <-remotes
	select {
	case r := <-remotes:
		t.Fatalf("the silent client reached gopcua too (%s)", r)
	default:
	}
	peer, ok := p.Peer(up)
	require.True(t, ok)
	require.Equal(t, c.LocalAddr().String(), peer)

	p.DropAll()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "dropped")
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(closed) == 1 && closed[0] == up
	}, 5*time.Second, 10*time.Millisecond, "Closed names gopcua's side")
	_, ok = p.Peer(up)
	require.False(t, ok, "forgotten once closed")
	mu.Lock()
	require.Equal(t, 2, accepted)
	mu.Unlock()
}

func TestDelayHoldsClientData(t *testing.T) {
	target, _ := echo(t)
	var mu sync.Mutex
	delay := 400 * time.Millisecond
	changed := make(chan struct{})
	_, addr := start(t, target, Hooks{Delay: func() (time.Duration, <-chan struct{}) {
		mu.Lock()
		defer mu.Unlock()
		return delay, changed
	}})
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.GreaterOrEqual(t, roundTrip(t, c, "HEL"), 400*time.Millisecond, "the Hello is held")
	require.GreaterOrEqual(t, roundTrip(t, c, "MSG"), 400*time.Millisecond, "and later requests too")
	mu.Lock()
	delay = 0
	close(changed)
	mu.Unlock()
	require.Less(t, roundTrip(t, c, "MSG"), 400*time.Millisecond, "until the delay is lifted")
}
