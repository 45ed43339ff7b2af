/*
 * Map: open addressing with linear probing over a power-of-two table at
 * most half full, so operations are O(1) expected.  As in libVig, each
 * bucket counts the keys whose probe sequence passed it ("chains"), so a
 * lookup stops at the first bucket no chain passes instead of scanning to
 * an empty one.
 */
#include <stdlib.h>

#include "state_internal.h"

int map_allocate(map_keys_equality *keq, map_key_hash *khash,
                 unsigned capacity, struct Map **map_out) {
  if (keq == NULL || khash == NULL || capacity == 0 || capacity > (1u << 30))
    return 0;
  unsigned buckets = 1;
  while (buckets < 2 * capacity)
    buckets <<= 1;
  struct Map *map = calloc(1, sizeof(*map));
  if (map == NULL)
    return 0;
  map->busy = calloc(buckets, sizeof(*map->busy));
  map->keys = calloc(buckets, sizeof(*map->keys));
  map->hashes = calloc(buckets, sizeof(*map->hashes));
  map->chains = calloc(buckets, sizeof(*map->chains));
  map->values = calloc(buckets, sizeof(*map->values));
  if (!map->busy || !map->keys || !map->hashes || !map->chains ||
      !map->values) {
    free(map->busy);
    free(map->keys);
    free(map->hashes);
    free(map->chains);
    free(map->values);
    free(map);
    return 0;
  }
  map->keq = keq;
  map->khash = khash;
  map->capacity = capacity;
  map->mask = buckets - 1;
  *map_out = map;
  return 1;
}

/* Bucket holding `key` (hash `hash`), or -1. */
static long map_find(struct Map *map, void *key, unsigned hash) {
  for (unsigned step = 0; step <= map->mask; ++step) {
    unsigned b = (hash + step) & map->mask;
    if (map->busy[b] && map->hashes[b] == hash && map->keq(map->keys[b], key))
      return b;
    if (map->chains[b] == 0)
      return -1;
  }
  return -1;
}

int map_get(struct Map *map, void *key, int *value_out) {
  long b = map_find(map, key, map->khash(key));
  if (b < 0)
    return 0;
  *value_out = map->values[b];
  return 1;
}

void map_put(struct Map *map, void *key, int value) {
  unsigned hash = map->khash(key);
  if (map->size >= map->capacity || map_find(map, key, hash) >= 0)
    return;
  for (unsigned step = 0;; ++step) {
    unsigned b = (hash + step) & map->mask;
    if (!map->busy[b]) {
      map->busy[b] = 1;
      map->keys[b] = key;
      map->hashes[b] = hash;
      map->values[b] = value;
      map->size++;
      return;
    }
    map->chains[b]++;
  }
}

void map_erase(struct Map *map, void *key, void **trash) {
  unsigned hash = map->khash(key);
  long found = map_find(map, key, hash);
  if (found < 0)
    return;
  for (unsigned b = hash & map->mask; b != (unsigned)found;
       b = (b + 1) & map->mask)
    map->chains[b]--;
  map->busy[found] = 0;
  if (trash != NULL)
    *trash = map->keys[found];
  map->keys[found] = NULL;
  map->size--;
}

unsigned map_size(struct Map *map) { return map->size; }
