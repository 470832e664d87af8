package keys

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/apiwarden/apiwarden/internal/lifecycle"
	"github.com/apiwarden/apiwarden/store"
)

// Policy is the part of the configuration keys are checked against. It can
// be replaced at run time (a config reload) with SetPolicy.
type Policy struct {
	Tiers       []string      // tiers a key may have
	DefaultTier string        // tier of a key created without one
	Scopes      []string      // scopes a key may hold
	GracePeriod time.Duration // default lifetime of the old secret after a rotation
}

// Options configure a Service.
type Options struct {
	Store  *store.Store
	Secret []byte // HMAC pepper; required
	Prefix string // key prefix, e.g. "wsk"
	Policy Policy
	// CacheSize is the number of verified keys kept in memory.
	CacheSize int
	// FlushInterval is how often last_used_at and denial events are
	// written behind; at most this much of them is lost in a crash.
	FlushInterval time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
	// Records, when set, is the system of record the keys are shared
	// through (cluster mode): admin writes go there first and Store
	// becomes its mirror, brought up to date by Sync. Nil: Store is the
	// only copy, as for a single instance.
	Records SystemOfRecord
	// WriteTimeout bounds each call to Records (default 5s).
	WriteTimeout time.Duration
}

// Service manages keys. All methods are safe for concurrent use.
type Service struct {
	store  *store.Store
	hasher *hasher
	prefix string
	policy atomic.Pointer[Policy]
	now    func() time.Time
	log    *slog.Logger

	index  hashIndex
	cache  *ristretto.Cache[uint64, *cacheEntry]
	epochs [epochShards]atomic.Uint64
	behind writeBehind
	usage  usageOutbox // cluster mode: what flushes share (usage.go)

	flushEvery time.Duration
	life       lifecycle.State

	records      SystemOfRecord // nil: single instance
	writeTimeout time.Duration
	syncMu       sync.Mutex   // serialises Sync
	mirrorSeq    atomic.Int64 // last change of records applied to store
	mirrorLast   string       // fingerprint of that change; needs syncMu
}

// New opens the key service over an open store, loading the hash index
// into memory. It returns ErrNoSecret without a secret.
func New(opts Options) (*Service, error) {
	if len(opts.Secret) == 0 {
		return nil, ErrNoSecret
	}
	if opts.Prefix == "" {
		opts.Prefix = "wsk"
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 100_000
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 5 * time.Second
	}
	cache, err := ristretto.NewCache(&ristretto.Config[uint64, *cacheEntry]{
		NumCounters:        int64(opts.CacheSize) * 10,
		MaxCost:            int64(opts.CacheSize),
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, fmt.Errorf("keys: cache: %w", err)
	}
	s := &Service{
		store:        opts.Store,
		hasher:       newHasher(opts.Secret),
		prefix:       opts.Prefix,
		now:          opts.Now,
		log:          opts.Logger,
		cache:        cache,
		flushEvery:   opts.FlushInterval,
		records:      opts.Records,
		writeTimeout: opts.WriteTimeout,
	}
	s.behind.init()
	if err := s.usage.init(); err != nil {
		cache.Close()
		return nil, err
	}
	s.SetPolicy(opts.Policy)
	if err := s.checkSecret(); err != nil {
		cache.Close()
		return nil, err
	}
	if err := s.loadIndex(); err != nil {
		cache.Close()
		return nil, err
	}
	if err := s.loadMirrorSeq(); err != nil {
		cache.Close()
		return nil, err
	}
	return s, nil
}

// secretCheckKey holds HMAC(secret, secretCheckLabel) in the meta bucket:
// it proves a secret is the one the stored hashes were made with, and
// reveals nothing about it.
var (
	secretCheckKey   = []byte("key_secret_check")
	secretCheckLabel = "apiwarden key secret check v1"
)

// checkSecret refuses a secret other than the one the file's keys were
// hashed with. Restoring a backup with the wrong secret would otherwise
// start fine and answer 401 to every key. The first start records it.
func (s *Service) checkSecret() error {
	sum := s.hasher.sum(secretCheckLabel)
	return s.store.Update(func(tx *store.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(store.BucketMeta)
		if err != nil {
			return err
		}
		stored := meta.Get(secretCheckKey)
		switch {
		case stored == nil:
			return meta.Put(secretCheckKey, sum[:])
		case subtle.ConstantTimeCompare(stored, sum[:]) != 1:
			return fmt.Errorf("%w: use the APIWARDEN_KEY_SECRET (or <data_dir>/%s) the file was created with", ErrSecretMismatch, SecretFileName)
		}
		return nil
	})
}

// SetPolicy replaces the tiers, scopes and grace period new requests are
// validated against. Existing keys keep what they have.
func (s *Service) SetPolicy(p Policy) {
	p.Tiers = slices.Clone(p.Tiers)
	p.Scopes = slices.Clone(p.Scopes)
	s.policy.Store(&p)
}

// Create stores a new key and returns it with its secret, which is not
// kept anywhere and cannot be shown again. Errors: ErrInvalid.
func (s *Service) Create(params CreateParams, actor string) (Key, string, error) {
	pol := s.policy.Load()
	now := s.now().UTC().Truncate(time.Millisecond)
	if params.Tier == "" {
		params.Tier = pol.DefaultTier
	}
	k := Key{
		ID:             newID(now.UnixMilli()),
		Name:           params.Name,
		OwnerID:        params.OwnerID,
		Tier:           params.Tier,
		Scopes:         params.Scopes,
		AllowedIPs:     params.AllowedIPs,
		AllowedOrigins: params.AllowedOrigins,
		ExpiresAt:      params.ExpiresAt,
		CreatedAt:      now,
		UpdatedAt:      now,
		Meta:           params.Meta,
	}
	if err := validate(&k, pol, now, true); err != nil {
		return Key{}, "", err
	}
	secret := generate(s.prefix)
	hash := s.hasher.sum(secret)
	k.Start = start(secret)
	rec := &record{Key: k, Hash: hash[:]}
	ev := Event{KeyID: k.ID, Type: EventCreated, Actor: actor, At: now}
	if s.records != nil {
		created, err := s.createShared(rec, ev)
		if err != nil {
			return Key{}, "", err
		}
		return s.present(created.Key, now), secret, nil
	}
	var touched [][]byte
	err := s.store.Update(func(tx *store.Tx) error {
		var err error
		if touched, err = applyRecord(tx, rec); err != nil {
			return err
		}
		return appendEvent(tx, ev)
	})
	if err != nil {
		return Key{}, "", fmt.Errorf("keys: create: %w", err)
	}
	s.afterApply(touched)
	return s.present(rec.Key, now), secret, nil
}

// Get returns a key by id. Errors: ErrNotFound.
func (s *Service) Get(id string) (Key, error) {
	var rec *record
	err := s.store.View(func(tx *store.Tx) error {
		var err error
		rec, err = getRecord(tx, id)
		return err
	})
	if err != nil {
		return Key{}, err
	}
	return s.present(rec.Key, s.now()), nil
}

// present fills the fields that depend on now or on writes still waiting
// in the write-behind buffer.
func (s *Service) present(k Key, now time.Time) Key {
	if t, ok := s.behind.pendingLastUsed(k.ID); ok && (k.LastUsedAt == nil || t.After(*k.LastUsedAt)) {
		k.LastUsedAt = &t
	}
	k.Status = k.statusAt(now)
	if k.Scopes == nil {
		k.Scopes = []string{}
	}
	if k.AllowedIPs == nil {
		k.AllowedIPs = []string{}
	}
	if k.AllowedOrigins == nil {
		k.AllowedOrigins = []string{}
	}
	if k.Meta == nil {
		k.Meta = map[string]string{}
	}
	return k
}

// Filter selects keys for List. Empty fields match everything.
type Filter struct {
	OwnerID string
	Tier    string
	Status  Status
	Cursor  string // from a previous page; empty for the first
	Limit   int    // 1..1000, default 50
}

// List returns keys in creation order and the cursor of the next page
// ("" when this is the last). Errors: ErrBadCursor.
func (s *Service) List(f Filter) ([]Key, string, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Limit = min(f.Limit, 1000)
	var after []byte
	if f.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(f.Cursor)
		if err != nil || !bytes.HasPrefix(b, []byte("key_")) {
			return nil, "", ErrBadCursor
		}
		after = b
	}
	now := s.now()
	out := []Key{}
	next := ""
	err := s.store.View(func(tx *store.Tx) error {
		c := tx.Bucket(store.BucketKeys).Cursor()
		k, v := c.First()
		if after != nil {
			k, v = c.Seek(after)
			if bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			var rec record
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("keys: record %s: %w", k, err)
			}
			key := s.present(rec.Key, now)
			if (f.OwnerID != "" && key.OwnerID != f.OwnerID) || (f.Tier != "" && key.Tier != f.Tier) ||
				(f.Status != "" && key.Status != f.Status) {
				continue
			}
			if len(out) == f.Limit {
				next = base64.RawURLEncoding.EncodeToString([]byte(out[len(out)-1].ID))
				return nil
			}
			out = append(out, key)
		}
		return nil
	})
	return out, next, err
}

// Update applies a patch. Errors: ErrNotFound, ErrInvalid,
// ErrAlreadyRevoked, ErrUnavailable (cluster mode).
func (s *Service) Update(id string, p Patch, actor string) (Key, error) {
	pol := s.policy.Load()
	now := s.now().UTC().Truncate(time.Millisecond)
	rec, err := s.modify(id, func(rec *record) (Event, error) {
		k := &rec.Key
		var changed []string
		set := func(name string, apply func()) {
			apply()
			changed = append(changed, name)
		}
		if p.Name != nil {
			set("name", func() { k.Name = *p.Name })
		}
		if p.OwnerID != nil {
			set("owner_id", func() { k.OwnerID = *p.OwnerID })
		}
		if p.Tier != nil {
			set("tier", func() { k.Tier = *p.Tier })
		}
		if p.Scopes != nil {
			set("scopes", func() { k.Scopes = *p.Scopes })
		}
		if p.AllowedIPs != nil {
			set("allowed_ips", func() { k.AllowedIPs = *p.AllowedIPs })
		}
		if p.AllowedOrigins != nil {
			set("allowed_origins", func() { k.AllowedOrigins = *p.AllowedOrigins })
		}
		if p.ExpiresAt.Set {
			set("expires_at", func() { k.ExpiresAt, rec.ExpiryRecorded = p.ExpiresAt.Time, false })
		}
		if p.Meta != nil {
			set("meta", func() { k.Meta = *p.Meta })
		}
		if err := validate(k, pol, now, false); err != nil {
			return Event{}, err
		}
		k.UpdatedAt = now
		return Event{KeyID: id, Type: EventUpdated, Actor: actor, At: now,
			Detail: "changed " + strings.Join(changed, ", ")}, nil
	})
	if err != nil {
		return Key{}, err
	}
	return s.present(rec.Key, now), nil
}

// Rotate gives the key a new secret and returns it. The old secret stays
// valid until now+grace (the policy's grace period when grace is nil; 0
// ends it at once). The key id, and so its buckets and history, stay.
// A secret older than the previous one stops working at once. Errors:
// ErrNotFound, ErrAlreadyRevoked, ErrInvalid, ErrUnavailable (cluster mode).
func (s *Service) Rotate(id string, grace *time.Duration, actor string) (Key, string, error) {
	g := s.policy.Load().GracePeriod
	if grace != nil {
		g = *grace
	}
	if g < 0 {
		return Key{}, "", fmt.Errorf("%w: grace period must not be negative", ErrInvalid)
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	secret := generate(s.prefix)
	hash := s.hasher.sum(secret)
	rec, err := s.modify(id, func(rec *record) (Event, error) {
		// The hash bucket follows the record (applyRecord): the secret
		// before the previous one, or the old one without grace, is gone.
		rec.PreviousHash, rec.GraceUntil = nil, nil
		if g > 0 {
			until := now.Add(g)
			rec.PreviousHash, rec.GraceUntil = rec.Hash, &until
		}
		rec.Hash = hash[:]
		rec.Start = start(secret)
		rec.RotatedAt = &now
		rec.UpdatedAt = now
		return Event{KeyID: id, Type: EventRotated, Actor: actor, At: now, Detail: "grace " + g.String()}, nil
	})
	if err != nil {
		return Key{}, "", err
	}
	return s.present(rec.Key, now), secret, nil
}

// Revoke ends a key for good; the very next verification on this
// instance refuses it (and, in cluster mode, on every other instance once
// its mirror has the change). Revoking a revoked key returns
// ErrAlreadyRevoked. Errors: ErrNotFound, ErrAlreadyRevoked, ErrUnavailable.
func (s *Service) Revoke(id, actor, reason string) (Key, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	rec, err := s.modify(id, func(rec *record) (Event, error) {
		rec.RevokedAt = &now
		rec.UpdatedAt = now
		return Event{KeyID: id, Type: EventRevoked, Actor: actor, At: now, Detail: reason}, nil
	})
	if err != nil {
		return Key{}, err
	}
	return s.present(rec.Key, now), nil
}

// modify applies change to a key's record and stores the result with the
// event change returns: in one bbolt transaction for a single instance,
// or in the system of record first (cluster mode; see modifyShared). Once
// the store has the new record, every cached verification of the key is
// stale, so the change is in force for the next request.
func (s *Service) modify(id string, change func(*record) (Event, error)) (*record, error) {
	return s.modifyKey(id, false, change)
}

// modifyKey is modify, for a revoked key too when revokedToo is set.
func (s *Service) modifyKey(id string, revokedToo bool, change func(*record) (Event, error)) (*record, error) {
	if s.records != nil {
		return s.modifyShared(id, revokedToo, change)
	}
	var rec *record
	var touched [][]byte
	err := s.store.Update(func(tx *store.Tx) error {
		var err error
		if rec, err = getRecord(tx, id); err != nil {
			return err
		}
		if rec.RevokedAt != nil && !revokedToo {
			return ErrAlreadyRevoked
		}
		ev, err := change(rec)
		if err != nil {
			return err
		}
		if touched, err = applyRecord(tx, rec); err != nil {
			return err
		}
		return appendEvent(tx, ev)
	})
	if err != nil {
		return nil, err
	}
	s.afterApply(touched)
	return rec, nil
}

func getRecord(tx *store.Tx, id string) (*record, error) {
	b, err := tx.MustBucket(store.BucketKeys)
	if err != nil {
		return nil, err
	}
	v := b.Get([]byte(id))
	if v == nil {
		return nil, ErrNotFound
	}
	var rec record
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("keys: record %s: %w", id, err)
	}
	return &rec, nil
}

func putRecord(tx *store.Tx, rec *record) error {
	b, err := tx.MustBucket(store.BucketKeys)
	if err != nil {
		return err
	}
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return b.Put([]byte(rec.ID), v)
}

// Kinds of entries in the hash index bucket.
const (
	hashCurrent  = 'c'
	hashPrevious = 'p'
)

func putHash(tx *store.Tx, hash []byte, id string, kind byte) error {
	b, err := tx.MustBucket(store.BucketKeyHashes)
	if err != nil {
		return err
	}
	return b.Put(hash, append([]byte{kind}, id...))
}
