package pipeline

import (
	"math/rand/v2"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// lookupEntryOverhead is what one cache entry costs besides its key and its documents' BSON
// bytes: the entry, its map slot, its place in the key list and the slice of documents (an
// estimate of the Go structures, counted so that many small entries cannot exceed the limit
// unseen).
const lookupEntryOverhead = 128

// lookupDocOverhead is what each cached document costs besides its bytes: its slice header.
const lookupDocOverhead = 24

// lookupCache is $cachedLookup's cache (Atlas's $cachedLookup page, spec §3.4): the results
// of a lookup key, kept for ttl, within max bytes (the BSON bytes of the results, the key and
// a per-entry overhead). To make room it evicts expired entries first, then random ones; a
// result larger than max on its own is not cached. It is used by one goroutine (the engine's).
type lookupCache struct {
	ttl       time.Duration
	max, used int64
	entries   map[string]*cacheEntry
	keys      []string // the keys of entries, for a random pick
	// Hits, Misses and Evictions count lookups answered from the cache, lookups that were not,
	// and entries removed to make room or because they expired.
	Hits, Misses, Evictions int64
}

type cacheEntry struct {
	docs    []bson.Raw
	expires time.Time
	size    int64
	at      int // index in keys
}

func newLookupCache(ttl time.Duration, max int64) *lookupCache {
	return &lookupCache{ttl: ttl, max: max, entries: map[string]*cacheEntry{}}
}

// get returns the cached results of key, if they have not expired at now.
func (c *lookupCache) get(key string, now time.Time) ([]bson.Raw, bool) {
	e, ok := c.entries[key]
	if !ok {
		c.Misses++
		return nil, false
	}
	if !now.Before(e.expires) {
		c.remove(key, e)
		c.Misses++
		return nil, false
	}
	c.Hits++
	return e.docs, true
}

// put caches docs (which the cache keeps: the caller must not change them) under key until
// now + ttl, evicting what it must to stay within max.
func (c *lookupCache) put(key string, docs []bson.Raw, now time.Time) {
	size := int64(lookupEntryOverhead + len(key))
	for _, d := range docs {
		size += int64(len(d)) + lookupDocOverhead
	}
	if old, ok := c.entries[key]; ok {
		c.remove(key, old)
	}
	if size > c.max {
		return
	}
	if c.used+size > c.max {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				c.remove(k, e)
				c.Evictions++
			}
		}
	}
	for c.used+size > c.max && len(c.keys) > 0 {
		k := c.keys[rand.IntN(len(c.keys))]
		c.remove(k, c.entries[k])
		c.Evictions++
	}
	c.entries[key] = &cacheEntry{docs: docs, expires: now.Add(c.ttl), size: size, at: len(c.keys)}
	c.keys = append(c.keys, key)
	c.used += size
}

func (c *lookupCache) remove(key string, e *cacheEntry) {
	last := len(c.keys) - 1
	if e.at != last {
		moved := c.keys[last]
		c.keys[e.at] = moved
		c.entries[moved].at = e.at
	}
	c.keys = c.keys[:last]
	delete(c.entries, key)
	c.used -= e.size
}
