/* DBSCAN on integer voxel coordinates with a hash of occupied grid rows.
 *
 * Stages:
 *   1. sort the points by (z, y, x) and group equal coordinates into cells,
 *      and runs of cells with the same (z, y) into rows;
 *   2. hash the rows (open addressing on the packed (z, y) key);
 *   3. count each cell's neighbours: for every row offset (dy, dz) within
 *      eps, the neighbours in that row are the cells with x within the
 *      offset's reach, a contiguous run found by sweeping two pointers
 *      along the row;
 *   4. join core cells within eps with union-find;
 *   5. number the clusters by their first core cell and label border cells
 *      with the smallest cluster id among their core neighbours.
 * Stages 3 and 5 run in parallel over rows. Every cell's result depends
 * only on the set of points, so labels are the same for any thread count
 * and input order. */
#include "geometry/dbscan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define KEY_BITS 21
#define EMPTY_SLOT (-1)

struct od_dbscan {
    double eps;
    int64_t min_points;

    /* Row offsets (dy, dz, reach) with dy^2 + dz^2 <= eps^2, (row_offset_count,
     * 3), in lexicographic (dz, dy) order. reach is the largest dx with
     * dx^2 + dy^2 + dz^2 <= eps^2. The offsets after (0, 0), from index
     * positive_start on, lead to rows with a larger key. */
    int32_t *row_offsets;
    int64_t row_offset_count;
    int64_t positive_start;
    int32_t own_row_reach;

    /* Results of the last run. */
    uint8_t *core_flags; /* (core_capacity) */
    int64_t core_capacity;
    int64_t cluster_count;
    int64_t noise_count;
    int has_run;
};

typedef struct sort_entry {
    int64_t key;
    int64_t index;
} sort_entry;

/* The occupied cells of one run in key order, grouped into rows, and the
 * rows' hash table. */
typedef struct cell_table {
    int64_t count;
    int32_t *x;      /* (count) each cell's x */
    int64_t *starts; /* (count + 1): the cell's points are sorted[starts[c]..starts[c+1]) */
    int64_t row_count;
    int64_t *row_keys;  /* (row_count) key >> KEY_BITS, the packed (z, y) */
    int64_t *row_first; /* (row_count + 1): the row's cells are row_first[r]..row_first[r+1] */
    int64_t *slots;     /* (slot_mask + 1): row index or EMPTY_SLOT */
    uint64_t slot_mask;
} cell_table;

/* Packs (x, y, z) so that key order is lexicographic (z, y, x) order. */
static int64_t pack_key(int64_t x, int64_t y, int64_t z)
{
    const int64_t bias = OD_DBSCAN_COORD_LIMIT;
    return ((z + bias) << (2 * KEY_BITS)) | ((y + bias) << KEY_BITS) | (x + bias);
}

/* splitmix64's finaliser: spreads neighbouring keys over the table. */
static uint64_t hash_key(int64_t key)
{
    uint64_t h = (uint64_t)key;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

/* Returns the index of the row that is (dy, dz) away from row_key, or -1
 * when that row is empty or outside the packable range. */
static int64_t find_row(const cell_table *cells, int64_t row_key, int32_t dy, int32_t dz)
{
    const int64_t mask = ((int64_t)1 << KEY_BITS) - 1;
    const int64_t y = (row_key & mask) + dy, z = (row_key >> KEY_BITS) + dz;
    if (y < 0 || y > mask || z < 0 || z > mask)
        return -1;
    const int64_t key = (z << KEY_BITS) | y;
    for (uint64_t slot = hash_key(key) & cells->slot_mask;; slot = (slot + 1) & cells->slot_mask) {
        int64_t row = cells->slots[slot];
        if (row == EMPTY_SLOT)
            return -1;
        if (cells->row_keys[row] == key)
            return row;
    }
}

od_dbscan *od_dbscan_new(double eps, int64_t min_points)
{
    if (!(eps > 0.0 && eps <= OD_DBSCAN_MAX_EPS) || min_points < 1)
        return NULL;
    od_dbscan *dbscan = calloc(1, sizeof *dbscan);
    if (dbscan == NULL)
        return NULL;
    dbscan->eps = eps;
    dbscan->min_points = min_points;

    /* The distance test is on integer squared distances against eps^2 in
     * double, which is exact for the eps values in use (1, 1.5, 2, ...).
     * NOTE: for an eps whose square is within rounding of an integer
     * (eps = sqrt(2) computed in double), the boundary may differ from
     * scikit-learn's, which compares sqrt of the squared distance. */
    const int reach = (int)floor(eps);
    const double eps_squared = eps * eps;
    const int64_t side = 2 * reach + 1;
    dbscan->row_offsets = malloc((size_t)(side * side) * 3 * sizeof *dbscan->row_offsets);
    if (dbscan->row_offsets == NULL) {
        free(dbscan);
        return NULL;
    }
    for (int dz = -reach; dz <= reach; dz++)
        for (int dy = -reach; dy <= reach; dy++) {
            if ((double)(dy * dy + dz * dz) > eps_squared)
                continue;
            int dx = 0;
            while ((double)((dx + 1) * (dx + 1) + dy * dy + dz * dz) <= eps_squared)
                dx++;
            if (dy == 0 && dz == 0) {
                dbscan->positive_start = dbscan->row_offset_count + 1;
                dbscan->own_row_reach = dx;
            }
            int32_t *offset = &dbscan->row_offsets[dbscan->row_offset_count * 3];
            offset[0] = dy;
            offset[1] = dz;
            offset[2] = dx;
            dbscan->row_offset_count++;
        }
    return dbscan;
}

void od_dbscan_free(od_dbscan *dbscan)
{
    if (dbscan == NULL)
        return;
    free(dbscan->row_offsets);
    free(dbscan->core_flags);
    free(dbscan);
}

int64_t od_dbscan_cluster_count(const od_dbscan *dbscan) { return dbscan->cluster_count; }
int64_t od_dbscan_noise_count(const od_dbscan *dbscan) { return dbscan->noise_count; }
const uint8_t *od_dbscan_core_flags(const od_dbscan *dbscan)
{
    return dbscan->has_run ? dbscan->core_flags : NULL;
}

static int compare_entries(const void *a, const void *b)
{
    const sort_entry *p = a, *q = b;
    if (p->key != q->key)
        return p->key < q->key ? -1 : 1;
    return (p->index > q->index) - (p->index < q->index);
}

static void free_cells(cell_table *cells)
{
    free(cells->x);
    free(cells->starts);
    free(cells->row_keys);
    free(cells->row_first);
    free(cells->slots);
}

/* Stages 1 and 2: groups the sorted points into cells and rows and hashes
 * the rows. */
static int build_cells(const sort_entry *sorted, int64_t count, cell_table *cells)
{
    const int64_t x_mask = ((int64_t)1 << KEY_BITS) - 1;
    memset(cells, 0, sizeof *cells);
    int64_t cell_count = 0, row_count = 0;
    for (int64_t i = 0; i < count; i++) {
        if (i == 0 || sorted[i].key != sorted[i - 1].key)
            cell_count++;
        if (i == 0 || (sorted[i].key >> KEY_BITS) != (sorted[i - 1].key >> KEY_BITS))
            row_count++;
    }
    uint64_t slot_count = 16;
    while (slot_count < 2 * (uint64_t)row_count)
        slot_count *= 2;
    cells->count = cell_count;
    cells->row_count = row_count;
    cells->slot_mask = slot_count - 1;
    cells->x = malloc((size_t)(cell_count + 1) * sizeof *cells->x);
    cells->starts = malloc((size_t)(cell_count + 1) * sizeof *cells->starts);
    cells->row_keys = malloc((size_t)(row_count + 1) * sizeof *cells->row_keys);
    cells->row_first = malloc((size_t)(row_count + 1) * sizeof *cells->row_first);
    cells->slots = malloc((size_t)slot_count * sizeof *cells->slots);
    if (cells->x == NULL || cells->starts == NULL || cells->row_keys == NULL || cells->row_first == NULL ||
        cells->slots == NULL) {
        free_cells(cells);
        return -1;
    }

    int64_t cell = -1, row = -1;
    for (int64_t i = 0; i < count; i++) {
        if (i > 0 && sorted[i].key == sorted[i - 1].key)
            continue;
        cell++;
        cells->x[cell] = (int32_t)((sorted[i].key & x_mask) - OD_DBSCAN_COORD_LIMIT);
        cells->starts[cell] = i;
        if (i == 0 || (sorted[i].key >> KEY_BITS) != (sorted[i - 1].key >> KEY_BITS)) {
            row++;
            cells->row_keys[row] = sorted[i].key >> KEY_BITS;
            cells->row_first[row] = cell;
        }
    }
    cells->starts[cell_count] = count;
    cells->row_first[row_count] = cell_count;

    for (uint64_t s = 0; s < slot_count; s++)
        cells->slots[s] = EMPTY_SLOT;
    for (int64_t r = 0; r < row_count; r++) {
        uint64_t slot = hash_key(cells->row_keys[r]) & cells->slot_mask;
        while (cells->slots[slot] != EMPTY_SLOT)
            slot = (slot + 1) & cells->slot_mask;
        cells->slots[slot] = r;
    }
    return 0;
}

/* Moves [*low, *high) to the cells before end, in the neighbour row, whose
 * x lies in [x - reach, x + reach]. Both bounds only move forward while x
 * increases along the sweeping row. */
static void advance_window(const cell_table *cells, int64_t end, int32_t x, int32_t reach, int64_t *low,
                           int64_t *high)
{
    while (*low < end && cells->x[*low] < x - reach)
        (*low)++;
    if (*high < *low)
        *high = *low;
    while (*high < end && cells->x[*high] <= x + reach)
        (*high)++;
}

static int64_t find_root(int64_t *parent, int64_t cell)
{
    while (parent[cell] != cell) {
        parent[cell] = parent[parent[cell]];
        cell = parent[cell];
    }
    return cell;
}

static void join(int64_t *parent, int64_t a, int64_t b)
{
    int64_t root_a = find_root(parent, a), root_b = find_root(parent, b);
    if (root_a < root_b)
        parent[root_b] = root_a;
    else if (root_b < root_a)
        parent[root_a] = root_b;
}

/* Stages 3 to 5 on the cells; writes cell_labels (cells->count) and
 * cell_is_core (cells->count), and returns the cluster count or -1 when out
 * of memory. */
static int64_t cluster_cells(const od_dbscan *dbscan, const cell_table *cells, int32_t *cell_labels,
                             uint8_t *cell_is_core)
{
    const int64_t cell_count = cells->count, row_count = cells->row_count;
    const int64_t offset_count = dbscan->row_offset_count;
    const int32_t *offsets = dbscan->row_offsets;
    int64_t *neighbours = malloc((size_t)(cell_count > 0 ? cell_count : 1) * sizeof *neighbours);
    int64_t *parent = malloc((size_t)(cell_count > 0 ? cell_count : 1) * sizeof *parent);
    if (neighbours == NULL || parent == NULL) {
        free(neighbours);
        free(parent);
        return -1;
    }

    /* stage 3: neighbour counts, points in the cell itself included. The
     * points of the cells in [low, high) are starts[high] - starts[low]. */
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < row_count; r++) {
        const int64_t first = cells->row_first[r], end = cells->row_first[r + 1];
        for (int64_t c = first; c < end; c++)
            neighbours[c] = 0;
        for (int64_t o = 0; o < offset_count; o++) {
            int64_t n = find_row(cells, cells->row_keys[r], offsets[o * 3], offsets[o * 3 + 1]);
            if (n < 0)
                continue;
            int64_t low = cells->row_first[n], high = low, n_end = cells->row_first[n + 1];
            for (int64_t c = first; c < end; c++) {
                advance_window(cells, n_end, cells->x[c], offsets[o * 3 + 2], &low, &high);
                neighbours[c] += cells->starts[high] - cells->starts[low];
            }
        }
        for (int64_t c = first; c < end; c++)
            cell_is_core[c] = neighbours[c] >= dbscan->min_points;
    }
    free(neighbours);

    /* stage 4: connected components of core cells. Linking each root to the
     * smaller one keeps the union order irrelevant to the result. Each pair
     * is visited once, from the cell with the smaller key: later cells of
     * the same row, and the rows at positive offsets. */
    for (int64_t c = 0; c < cell_count; c++)
        parent[c] = c;
    for (int64_t r = 0; r < row_count; r++) {
        const int64_t first = cells->row_first[r], end = cells->row_first[r + 1];
        for (int64_t c = first; c < end; c++) {
            if (!cell_is_core[c])
                continue;
            for (int64_t n = c + 1; n < end && cells->x[n] <= cells->x[c] + dbscan->own_row_reach; n++)
                if (cell_is_core[n])
                    join(parent, c, n);
        }
        for (int64_t o = dbscan->positive_start; o < offset_count; o++) {
            int64_t n = find_row(cells, cells->row_keys[r], offsets[o * 3], offsets[o * 3 + 1]);
            if (n < 0)
                continue;
            int64_t low = cells->row_first[n], high = low, n_end = cells->row_first[n + 1];
            for (int64_t c = first; c < end; c++) {
                advance_window(cells, n_end, cells->x[c], offsets[o * 3 + 2], &low, &high);
                if (!cell_is_core[c])
                    continue;
                for (int64_t m = low; m < high; m++)
                    if (cell_is_core[m])
                        join(parent, c, m);
            }
        }
    }

    /* stage 5a: cluster ids in the order of each cluster's first core cell */
    int64_t cluster_count = 0;
    for (int64_t c = 0; c < cell_count; c++) {
        cell_labels[c] = -1;
        if (!cell_is_core[c])
            continue;
        int64_t root = find_root(parent, c);
        if (root == c)
            cell_labels[c] = (int32_t)cluster_count++;
        else
            cell_labels[c] = cell_labels[root];
    }
    free(parent);

    /* stage 5b: border cells join the smallest cluster id among their core
     * neighbours. Only core cells' labels are read, and those are final. */
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < row_count; r++) {
        const int64_t first = cells->row_first[r], end = cells->row_first[r + 1];
        for (int64_t o = 0; o < offset_count; o++) {
            int64_t n = find_row(cells, cells->row_keys[r], offsets[o * 3], offsets[o * 3 + 1]);
            if (n < 0)
                continue;
            int64_t low = cells->row_first[n], high = low, n_end = cells->row_first[n + 1];
            for (int64_t c = first; c < end; c++) {
                advance_window(cells, n_end, cells->x[c], offsets[o * 3 + 2], &low, &high);
                if (cell_is_core[c])
                    continue;
                for (int64_t m = low; m < high; m++)
                    if (cell_is_core[m] && (cell_labels[c] < 0 || cell_labels[m] < cell_labels[c]))
                        cell_labels[c] = cell_labels[m];
            }
        }
    }
    return cluster_count;
}
int od_dbscan_run(od_dbscan *dbscan, const int32_t *voxels, int64_t count, int32_t *labels, od_error *err)
{
    /* voxels is (count, 3) as (x, y, z); labels is (count) */
    if (dbscan == NULL)
        return od_fail(err, "dbscan: the DBSCAN object is NULL");
    if (count < 0)
        return od_fail(err, "dbscan: voxel count is %lld, expected >= 0", (long long)count);
    if (count > 0 && (voxels == NULL || labels == NULL))
        return od_fail(err, "dbscan: voxels or labels is NULL for %lld voxels", (long long)count);
    if (count > INT32_MAX)
        return od_fail(err, "dbscan: voxel count %lld exceeds the int32 labels' range", (long long)count);
    for (int64_t i = 0; i < count * 3; i++) {
        if (voxels[i] < -OD_DBSCAN_COORD_LIMIT || voxels[i] >= OD_DBSCAN_COORD_LIMIT)
            return od_fail(err, "dbscan: voxel %lld has coordinate %d, expected in [%d, %d)",
                           (long long)(i / 3), (int)voxels[i], -OD_DBSCAN_COORD_LIMIT,
                           OD_DBSCAN_COORD_LIMIT);
    }

    uint8_t *core_flags = dbscan->core_flags;
    if (dbscan->core_capacity < count) {
        core_flags = realloc(dbscan->core_flags, (size_t)count);
        if (core_flags == NULL)
            return od_fail(err, "dbscan: out of memory for %lld voxels", (long long)count);
        dbscan->core_flags = core_flags;
        dbscan->core_capacity = count;
    }

    /* stage 1: sort by (z, y, x), ties by input index */
    sort_entry *sorted = malloc((size_t)(count > 0 ? count : 1) * sizeof *sorted);
    if (sorted == NULL)
        return od_fail(err, "dbscan: out of memory for %lld voxels", (long long)count);
    for (int64_t i = 0; i < count; i++) {
        sorted[i].key = pack_key(voxels[i * 3], voxels[i * 3 + 1], voxels[i * 3 + 2]);
        sorted[i].index = i;
    }
    qsort(sorted, (size_t)count, sizeof *sorted, compare_entries);

    cell_table cells;
    if (build_cells(sorted, count, &cells) != 0) {
        free(sorted);
        return od_fail(err, "dbscan: out of memory for %lld voxels", (long long)count);
    }
    size_t per_cell = (size_t)(cells.count > 0 ? cells.count : 1);
    int32_t *cell_labels = malloc(per_cell * sizeof *cell_labels);
    uint8_t *cell_is_core = malloc(per_cell);
    int64_t cluster_count = -1;
    if (cell_labels != NULL && cell_is_core != NULL)
        cluster_count = cluster_cells(dbscan, &cells, cell_labels, cell_is_core);
    if (cluster_count < 0) {
        free(cell_labels);
        free(cell_is_core);
        free_cells(&cells);
        free(sorted);
        return od_fail(err, "dbscan: out of memory for %lld cells", (long long)cells.count);
    }

    /* every point takes its cell's label and core flag */
    int64_t noise_count = 0;
    for (int64_t c = 0; c < cells.count; c++) {
        for (int64_t i = cells.starts[c]; i < cells.starts[c + 1]; i++) {
            labels[sorted[i].index] = cell_labels[c];
            core_flags[sorted[i].index] = cell_is_core[c];
        }
        if (cell_labels[c] < 0)
            noise_count += cells.starts[c + 1] - cells.starts[c];
    }
    dbscan->cluster_count = cluster_count;
    dbscan->noise_count = noise_count;
    dbscan->has_run = 1;
    od_log_info("dbscan", "%lld clusters, %lld noise voxels", (long long)cluster_count, (long long)noise_count);

    free(cell_labels);
    free(cell_is_core);
    free_cells(&cells);
    free(sorted);
    return 0;
}
