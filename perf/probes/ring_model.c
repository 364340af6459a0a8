/*
 * ring_model.c - a C model of shmpi's ring ping-pong, with no runtime around it: the
 * floor a two-rank 8-byte ping-pong through such a ring can reach on this machine.
 *
 * Two threads pinned to CPUs 0 and 1 bounce a record through two 1 MiB rings. A
 * record is a sequence number in its first word (the "seal", stored last with
 * Release), two header words and an 8-byte payload, as shmpi's eager records are;
 * the receiver polls the seal. With zero-ahead, the writer also stores to the next
 * cache line after sealing, so that line is its own when the next record needs it
 * (what shmpi's `Producer::zero_ahead` does). Prints the one-way time of 5 runs of
 * 2,000,000 round trips each.
 *
 *   gcc -O2 -pthread -o /tmp/ring_model perf/probes/ring_model.c
 *   /tmp/ring_model [RECORD_BYTES [ZERO_AHEAD [PAUSES]]]   default 32 1 1
 *       PAUSES: `pause` instructions per poll; -1 polls with `lfence` instead
 *   /tmp/ring_model pause          ns per `pause` instruction on this CPU
 *
 * On the Zen 5 host (2026-12-02, docs/performance.md): 45-51 ns one-way with 32-byte
 * records, zero-ahead and one pause per poll; 70-75 ns polling with lfence; one pause
 * took 26-28 ns. One cache line alone (`limits c2c`): 44-49 ns.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CAP (1u << 20)
#define ROUND_TRIPS 2000000L

static char *ring[2];
static int record_bytes = 32;
static int zero_ahead = 1;
static int pauses = 1;

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

/* The buffer offset of position *pos, wrapping to the start when a record would not
 * fit before the end (both sides wrap alike). */
static uint64_t *slot(char *r, uint64_t *pos)
{
    uint64_t off = *pos & (CAP - 1);
    if (off + record_bytes > CAP) {
        off = 0;
        *pos = (*pos + CAP) & ~(uint64_t)(CAP - 1);
    }
    return (uint64_t *)(r + off);
}

static void put(char *r, uint64_t *pos, uint64_t seq, uint64_t payload)
{
    uint64_t *rec = slot(r, pos);
    rec[1] = 0x1234; /* header words */
    rec[2] = 0x5678;
    rec[3] = payload;
    __atomic_store_n(&rec[0], seq, __ATOMIC_RELEASE);
    if (zero_ahead) {
        uint64_t next_line = ((((char *)rec - r) + record_bytes) | 63) + 1;
        if (next_line + 8 <= CAP)
            *(volatile uint64_t *)(r + next_line) = 0;
    }
    *pos += record_bytes;
}

static uint64_t get(char *r, uint64_t *pos, uint64_t seq)
{
    uint64_t *rec = slot(r, pos);
    if (pauses >= 0) {
        while (__atomic_load_n(&rec[0], __ATOMIC_ACQUIRE) != seq)
            for (int q = 0; q < pauses; q++)
                __builtin_ia32_pause();
    } else {
        while (__atomic_load_n(&rec[0], __ATOMIC_ACQUIRE) != seq)
            __builtin_ia32_lfence();
    }
    uint64_t v = rec[3];
    *pos += record_bytes;
    return v;
}

static void *side(void *arg)
{
    int me = (int)(long)arg;
    uint64_t in = 0, out = 0;
    pin(me);
    for (long i = 1; i <= ROUND_TRIPS; i++) {
        if (me == 0) {
            put(ring[0], &out, i, i);
            if (get(ring[1], &in, i) != (uint64_t)i)
                abort();
        } else {
            put(ring[1], &out, i, get(ring[0], &in, i));
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "pause") == 0) {
        for (int k = 0; k < 3; k++) {
            double t0 = now_ns();
            for (int i = 0; i < 10000000; i++)
                __builtin_ia32_pause();
            printf("%.2f ns per pause\n", (now_ns() - t0) / 1e7);
        }
        return 0;
    }
    if (argc > 1)
        record_bytes = atoi(argv[1]);
    if (argc > 2)
        zero_ahead = atoi(argv[2]);
    if (argc > 3)
        pauses = atoi(argv[3]);
    if (record_bytes < 32 || record_bytes % 8 != 0) {
        fprintf(stderr, "RECORD_BYTES must be a multiple of 8, at least 32\n");
        return 2;
    }
    for (int k = 0; k < 5; k++) {
        for (int j = 0; j < 2; j++) {
            ring[j] = aligned_alloc(4096, CAP);
            memset(ring[j], 0, CAP);
        }
        pthread_t t;
        double t0 = now_ns();
        pthread_create(&t, NULL, side, (void *)1L);
        side((void *)0L);
        pthread_join(t, NULL);
        printf("%.1f ", (now_ns() - t0) / ROUND_TRIPS / 2);
        free(ring[0]);
        free(ring[1]);
    }
    printf(" ns one-way, %d-byte records%s, %s\n", record_bytes,
           zero_ahead ? ", zero-ahead" : "",
           pauses >= 0 ? "pause per poll" : "lfence per poll");
    return 0;
}
