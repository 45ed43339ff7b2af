/*
 * Tests of the state library (codegen/runtime/state), one function per
 * case; `test_state NAME` runs one case, tests/test_state_library.py runs
 * each under ASan/UBSan.  Allocations are counted (-Wl,--wrap) to check that
 * operations after *_allocate never allocate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nf.h"

static long allocations;
void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__wrap_malloc(size_t size) { ++allocations; return __real_malloc(size); }
void *__wrap_calloc(size_t n, size_t size) { ++allocations; return __real_calloc(n, size); }

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                             \
    }                                                                      \
  } while (0)

static bool u32_eq(void *a, void *b) { return *(uint32_t *)a == *(uint32_t *)b; }
static unsigned u32_hash(void *k) { return *(uint32_t *)k * 2654435761u; }
/* A deliberately poor hash: every key collides, exercising long chains. */
static unsigned bad_hash(void *k) { (void)k; return 7; }

static struct Map *new_map(unsigned capacity, map_key_hash *hash) {
  struct Map *map;
  CHECK(map_allocate(u32_eq, hash, capacity, &map));
  return map;
}

static void test_full_map(void) {
  enum { CAP = 100 };
  static uint32_t keys[CAP + 1];
  struct Map *map = new_map(CAP, u32_hash);
  long before = allocations;
  for (int i = 0; i < CAP; ++i) {
    keys[i] = (uint32_t)i * 7919u;
    map_put(map, &keys[i], i);
  }
  CHECK(map_size(map) == CAP);
  keys[CAP] = 123456789u;
  map_put(map, &keys[CAP], CAP); /* full: leaves the map unchanged */
  CHECK(map_size(map) == CAP);
  int value;
  CHECK(!map_get(map, &keys[CAP], &value));
  for (int i = 0; i < CAP; ++i) {
    CHECK(map_get(map, &keys[i], &value));
    CHECK(value == i);
  }
  CHECK(allocations == before);
}

static void test_put_after_erase(void) {
  enum { CAP = 16 };
  static uint32_t keys[CAP + 1];
  struct Map *map = new_map(CAP, bad_hash);
  for (int i = 0; i < CAP; ++i) {
    keys[i] = (uint32_t)i;
    map_put(map, &keys[i], i);
  }
  void *trash = NULL;
  map_erase(map, &keys[3], &trash);
  CHECK(trash == &keys[3]);
  CHECK(map_size(map) == CAP - 1);
  keys[CAP] = 1000;
  map_put(map, &keys[CAP], 77);
  int value;
  CHECK(map_get(map, &keys[CAP], &value) && value == 77);
  CHECK(!map_get(map, &keys[3], &value));
  for (int i = 0; i < CAP; ++i)
    if (i != 3)
      CHECK(map_get(map, &keys[i], &value) && value == i);
  /* Re-putting the erased key works too; duplicates are ignored. */
  map_erase(map, &keys[CAP], &trash);
  map_put(map, &keys[3], 33);
  map_put(map, &keys[3], 44);
  CHECK(map_get(map, &keys[3], &value) && value == 33);
  CHECK(map_size(map) == CAP);
}

/* Random puts and erases checked against a plain array model. */
static void test_map_random(void) {
  enum { CAP = 512, KEYS = 2048, STEPS = 200000 };
  static uint32_t keys[KEYS];
  static int present[KEYS];
  struct Map *map = new_map(CAP, u32_hash);
  unsigned size = 0;
  uint32_t rng = 12345;
  for (int i = 0; i < KEYS; ++i)
    keys[i] = (uint32_t)i * 40503u;
  for (int step = 0; step < STEPS; ++step) {
    rng = rng * 1103515245u + 12345u;
    int k = (int)((rng >> 8) % KEYS);
    int value;
    if (present[k]) {
      CHECK(map_get(map, &keys[k], &value) && value == k);
      void *trash;
      map_erase(map, &keys[k], &trash);
      present[k] = 0;
      --size;
    } else {
      CHECK(!map_get(map, &keys[k], &value));
      if (size < CAP) {
        map_put(map, &keys[k], k);
        present[k] = 1;
        ++size;
      }
    }
    CHECK(map_size(map) == size);
  }
}

static void test_vector(void) {
  struct Vector *vector;
  CHECK(!vector_allocate(0, 4, NULL, &vector));
  CHECK(vector_allocate(sizeof(uint64_t), 4, NULL, &vector));
  uint64_t *a, *b;
  vector_borrow(vector, 0, (void **)&a);
  vector_borrow(vector, 3, (void **)&b);
  CHECK(*a == 0 && *b == 0 && a != b);
  *b = 42;
  vector_return(vector, 3, b);
  vector_borrow(vector, 3, (void **)&b);
  CHECK(*b == 42);
}

static struct DoubleChain *new_chain(int range) {
  struct DoubleChain *chain;
  CHECK(dchain_allocate(range, &chain));
  return chain;
}

static void test_dchain_full_and_age_order(void) {
  enum { RANGE = 64 };
  struct DoubleChain *chain = new_chain(RANGE);
  long before = allocations;
  int order[RANGE], index;
  for (int i = 0; i < RANGE; ++i) {
    CHECK(dchain_allocate_new_index(chain, &order[i], 100 + i));
    CHECK(dchain_is_index_allocated(chain, order[i]));
  }
  CHECK(!dchain_allocate_new_index(chain, &index, 1000)); /* full */
  CHECK(!dchain_expire_one_index(chain, &index, 100)); /* nothing before 100 */
  for (int i = 0; i < RANGE; ++i) {
    CHECK(dchain_expire_one_index(chain, &index, 1000));
    CHECK(index == order[i]); /* oldest first */
    CHECK(!dchain_is_index_allocated(chain, index));
  }
  CHECK(!dchain_expire_one_index(chain, &index, 1000));
  CHECK(dchain_allocate_new_index(chain, &index, 2000));
  CHECK(!dchain_is_index_allocated(chain, -1) && !dchain_is_index_allocated(chain, RANGE));
  CHECK(allocations == before);
}

static void test_dchain_rejuvenate(void) {
  struct DoubleChain *chain = new_chain(8);
  int a, b, c, index;
  CHECK(dchain_allocate_new_index(chain, &a, 10));
  CHECK(dchain_allocate_new_index(chain, &b, 20));
  CHECK(dchain_allocate_new_index(chain, &c, 30));
  CHECK(dchain_rejuvenate_index(chain, a, 40)); /* a is now the youngest */
  CHECK(dchain_expire_one_index(chain, &index, 35) && index == b);
  CHECK(dchain_expire_one_index(chain, &index, 35) && index == c);
  CHECK(!dchain_expire_one_index(chain, &index, 35)); /* a lives until 40 */
  CHECK(dchain_is_index_allocated(chain, a));
  CHECK(dchain_expire_one_index(chain, &index, 41) && index == a);
  CHECK(!dchain_rejuvenate_index(chain, a, 50)); /* freed: not rejuvenated */
  CHECK(!dchain_free_index(chain, a));
}

static void test_dchain_free(void) {
  struct DoubleChain *chain = new_chain(2);
  int a, b, index;
  CHECK(dchain_allocate_new_index(chain, &a, 1));
  CHECK(dchain_allocate_new_index(chain, &b, 2));
  CHECK(dchain_free_index(chain, a));
  CHECK(dchain_allocate_new_index(chain, &index, 3) && index == a);
  CHECK(dchain_expire_one_index(chain, &index, 10) && index == b);
}

static void test_expire_items_single_map(void) {
  enum { CAP = 16 };
  struct Map *map = new_map(CAP, u32_hash);
  struct Vector *keys;
  CHECK(vector_allocate(sizeof(uint32_t), CAP, NULL, &keys));
  struct DoubleChain *chain = new_chain(CAP);
  long before = allocations;
  for (int i = 0; i < 10; ++i) {
    int index;
    CHECK(dchain_allocate_new_index(chain, &index, 100 * i));
    uint32_t *cell;
    vector_borrow(keys, index, (void **)&cell);
    *cell = 5000u + (uint32_t)i;
    map_put(map, cell, index);
    vector_return(keys, index, cell);
  }
  /* Touch key 5001 late so it survives. */
  uint32_t probe = 5001;
  int value;
  CHECK(map_get(map, &probe, &value));
  CHECK(dchain_rejuvenate_index(chain, value, 950));
  CHECK(expire_items_single_map(chain, keys, map, 450) == 4); /* 0,200,300,400 */
  CHECK(map_size(map) == 6);
  for (uint32_t i = 0; i < 10; ++i) {
    probe = 5000u + i;
    int alive = i == 1 || i >= 5;
    CHECK(map_get(map, &probe, &value) == alive);
  }
  CHECK(expire_items_single_map(chain, keys, map, 450) == 0);
  CHECK(expire_items_single_map(chain, keys, map, 10000) == 6);
  CHECK(map_size(map) == 0);
  CHECK(allocations == before);
}

enum { HEIGHT = 97, BACKENDS = 8, SAMPLES = 5000 };

static struct Vector *new_cht(void) {
  struct Vector *cht;
  CHECK(vector_allocate(sizeof(uint32_t), HEIGHT * BACKENDS, NULL, &cht));
  CHECK(cht_fill_cht(cht, HEIGHT, BACKENDS));
  return cht;
}

static void test_cht_rejects_bad_sizes(void) {
  struct Vector *cht;
  CHECK(vector_allocate(sizeof(uint32_t), 100 * BACKENDS, NULL, &cht));
  CHECK(!cht_fill_cht(cht, 100, BACKENDS)); /* not prime */
  CHECK(!cht_fill_cht(cht, 7, BACKENDS));   /* not above the backend count */
  CHECK(!cht_fill_cht(cht, 101, BACKENDS)); /* does not fit the vector */
}

static void test_cht_balanced_and_stable(void) {
  struct Vector *cht = new_cht();
  struct DoubleChain *active = new_chain(BACKENDS);
  int index, rows[BACKENDS] = {0};
  for (int b = 0; b < BACKENDS; ++b)
    CHECK(dchain_allocate_new_index(active, &index, 1));
  /* Each row is a permutation of all backends. */
  for (int r = 0; r < HEIGHT; ++r) {
    int seen[BACKENDS] = {0};
    for (int i = 0; i < BACKENDS; ++i) {
      uint32_t *cell;
      vector_borrow(cht, r * BACKENDS + i, (void **)&cell);
      CHECK(*cell < BACKENDS && !seen[*cell]);
      seen[*cell] = 1;
    }
  }
  static int chosen[SAMPLES];
  for (int h = 0; h < HEIGHT; ++h) {
    CHECK(cht_find_preferred_available_backend((uint64_t)h, cht, active, HEIGHT,
                                               BACKENDS, &index));
    rows[index]++;
  }
  for (int b = 0; b < BACKENDS; ++b) /* Maglev: first choices even to +-1 */
    CHECK(rows[b] >= HEIGHT / BACKENDS && rows[b] <= HEIGHT / BACKENDS + 1);
  for (int s = 0; s < SAMPLES; ++s) {
    CHECK(cht_find_preferred_available_backend((uint64_t)s * 2654435761u, cht, active,
                                               HEIGHT, BACKENDS, &chosen[s]));
  }
  /* Same answer again while nothing changes. */
  for (int s = 0; s < SAMPLES; ++s) {
    CHECK(cht_find_preferred_available_backend((uint64_t)s * 2654435761u, cht, active,
                                               HEIGHT, BACKENDS, &index));
    CHECK(index == chosen[s]);
  }
  /* Backend 3 goes down: only its hashes move, never to 3. */
  CHECK(dchain_free_index(active, 3));
  int moved = 0;
  for (int s = 0; s < SAMPLES; ++s) {
    CHECK(cht_find_preferred_available_backend((uint64_t)s * 2654435761u, cht, active,
                                               HEIGHT, BACKENDS, &index));
    CHECK(index != 3);
    if (chosen[s] == 3)
      ++moved;
    else
      CHECK(index == chosen[s]);
  }
  CHECK(moved > 0);
  /* No backend active: none chosen. */
  for (int b = 0; b < BACKENDS; ++b)
    dchain_free_index(active, b);
  CHECK(!cht_find_preferred_available_backend(1, cht, active, HEIGHT, BACKENDS, &index));
}

static void test_sketch_threshold(void) {
  struct Sketch *sketch;
  CHECK(sketch_allocate(u32_hash, 1024, 3, &sketch));
  long before = allocations;
  uint32_t heavy = 77, light = 78;
  for (int i = 0; i < 3; ++i) {
    sketch_compute_hashes(sketch, &heavy);
    CHECK(!sketch_fetch(sketch)); /* 0, 1, 2 <= 3 */
    CHECK(sketch_touch_buckets(sketch, 100 + i));
  }
  sketch_compute_hashes(sketch, &heavy);
  CHECK(!sketch_fetch(sketch)); /* 3 is not over 3 */
  CHECK(sketch_touch_buckets(sketch, 110));
  CHECK(sketch_fetch(sketch)); /* 4 > 3 */
  sketch_compute_hashes(sketch, &light);
  CHECK(sketch_touch_buckets(sketch, 110));
  CHECK(!sketch_fetch(sketch));
  CHECK(allocations == before);
}

static void test_sketch_expiry(void) {
  struct Sketch *sketch;
  CHECK(sketch_allocate(u32_hash, 1024, 1, &sketch));
  uint32_t a = 1, b = 2;
  for (int i = 0; i < 3; ++i) {
    sketch_compute_hashes(sketch, &a);
    sketch_touch_buckets(sketch, 10);
    sketch_compute_hashes(sketch, &b);
    sketch_touch_buckets(sketch, 10);
  }
  sketch_compute_hashes(sketch, &a);
  sketch_refresh(sketch, 50); /* a's buckets live on */
  sketch_expire(sketch, 20);
  sketch_compute_hashes(sketch, &a);
  CHECK(sketch_fetch(sketch)); /* 3 > 1 still */
  sketch_compute_hashes(sketch, &b);
  CHECK(!sketch_fetch(sketch)); /* expired: back to 0 */
  sketch_expire(sketch, 60);
  sketch_compute_hashes(sketch, &a);
  CHECK(!sketch_fetch(sketch));
}

static const struct {
  const char *name;
  void (*run)(void);
} tests[] = {
    {"full_map", test_full_map},
    {"put_after_erase", test_put_after_erase},
    {"map_random", test_map_random},
    {"vector", test_vector},
    {"dchain_full_and_age_order", test_dchain_full_and_age_order},
    {"dchain_rejuvenate", test_dchain_rejuvenate},
    {"dchain_free", test_dchain_free},
    {"expire_items_single_map", test_expire_items_single_map},
    {"cht_rejects_bad_sizes", test_cht_rejects_bad_sizes},
    {"cht_balanced_and_stable", test_cht_balanced_and_stable},
    {"sketch_threshold", test_sketch_threshold},
    {"sketch_expiry", test_sketch_expiry},
};

int main(int argc, char **argv) {
  const size_t count = sizeof(tests) / sizeof(tests[0]);
  int ran = 0;
  for (size_t i = 0; i < count; ++i) {
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
      printf("%s\n", tests[i].name);
      continue;
    }
    if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
      continue;
    tests[i].run();
    printf("ok %s\n", tests[i].name);
    ++ran;
  }
  return ran || (argc > 1 && strcmp(argv[1], "--list") == 0) ? 0 : 2;
}
