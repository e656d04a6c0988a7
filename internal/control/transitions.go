package control

import (
	"container/heap"
	"time"
)

// transitions holds the next scheduled change of every point that has
// one, in buckets by instant: at a window boundary thousands of points
// change at the same instant, and taking a bucket costs one heap
// operation, not one per point (a heap of points spent ~4 ms sifting at
// a 10,000-point boundary).
type transitions struct {
	instants instantHeap // the instants that have a bucket
	buckets  map[int64][]*pointState
}

// reset empties the transitions.
func (t *transitions) reset() {
	t.instants = t.instants[:0]
	if t.buckets == nil {
		t.buckets = map[int64][]*pointState{}
	}
	clear(t.buckets)
}

// add schedules ps to change at at.
func (t *transitions) add(at time.Time, ps *pointState) {
	k := at.UnixNano()
	b, ok := t.buckets[k]
	if !ok {
		heap.Push(&t.instants, k)
	}
	t.buckets[k] = append(b, ps)
}

// next returns the earliest instant with a transition; ok is false when
// there is none.
func (t *transitions) next() (time.Time, bool) {
	if len(t.instants) == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, t.instants[0]), true
}

// take removes and returns the points of the earliest instant, if it is
// not after now.
func (t *transitions) take(now time.Time) (time.Time, []*pointState, bool) {
	if len(t.instants) == 0 || t.instants[0] > now.UnixNano() {
		return time.Time{}, nil, false
	}
	k := heap.Pop(&t.instants).(int64)
	pts := t.buckets[k]
	delete(t.buckets, k)
	return time.Unix(0, k), pts, true
}

// instantHeap is a min-heap of instants in Unix nanoseconds.
type instantHeap []int64

func (h instantHeap) Len() int           { return len(h) }
func (h instantHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h instantHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *instantHeap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *instantHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
