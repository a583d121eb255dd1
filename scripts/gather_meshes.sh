#!/bin/sh
# Gathers real meshes from Debian packages for the benchmark generator and
# converts them to formats that od_mesh_load reads. Nothing it writes is
# committed. It installs the packages it needs when they are missing:
#   sweethome3d-furniture  furniture OBJ models in zip catalogs  -> toys/
#   libcgal-demo           CGAL's sample meshes (OFF)            -> toys/ (organic), parts/ (CAD-like)
#   occt-misc              OpenCASCADE samples (STEP, BREP, IGES, STL) -> parts/
#   gmsh, gmsh-doc         gmsh converts STEP, BREP, IGES and its own demos -> parts/
#   openscad, openscad-mcad  MCAD gears, bearings, bolts, nuts, washers at several sizes -> parts/
#
# usage: scripts/gather_meshes.sh [OUT_DIR]     (default out/meshes)
# environment:
#   GATHER_TIMEOUT  seconds allowed for each conversion (default 60)
#   GATHER_JOBS     conversions run at once (default 2)
#   GATHER_TOYS_BY  type (default): furniture goes under its object type
#                   (chair, lamp...) when 3 or more models share it, else
#                   under the catalog's category; catalog: always under the
#                   catalog's category (kitchen, lights...)
#
# It writes OUT_DIR/toys/<category>/<name>.obj|off (a furniture model's
# .mtl and textures in the folder <name>/ beside it),
# OUT_DIR/parts/<family>/<name>.stl|off, OUT_DIR/catalog.json (each mesh
# with its source package, source file, licence and category or family)
# and OUT_DIR/gather.log (each conversion's outcome). A failed or timed
# out conversion is counted and logged, and the rest goes on. The output
# of an earlier run is replaced.
set -eu
cd "$(dirname "$0")/.."
out=${1:-out/meshes}

packages="sweethome3d-furniture libcgal-demo occt-misc gmsh gmsh-doc openscad openscad-mcad python3"
missing=""
for package in $packages; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $package" ;;
    esac
done
if [ -n "$missing" ]; then
    echo "gather: installing$missing"
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            runner=sudo
        else
            echo "gather: not root and no sudo; run as root: apt-get install$missing" >&2
            exit 1
        fi
    else
        runner=
    fi
    $runner apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $runner apt-get install -y -qq --no-install-recommends $missing
fi

mkdir -p "$out"
exec python3 - "$out" <<'PYTHON'
import concurrent.futures
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile

OUT = sys.argv[1]
TIMEOUT = float(os.environ.get("GATHER_TIMEOUT", "60"))
JOBS = int(os.environ.get("GATHER_JOBS", "2"))
TOYS_BY = os.environ.get("GATHER_TOYS_BY", "type")
if TOYS_BY not in ("catalog", "type"):
    sys.exit("gather: invalid GATHER_TOYS_BY '%s' (expected catalog or type)" % TOYS_BY)
STAGING = os.path.join(OUT, ".staging")
WORK = os.path.join(OUT, ".work")
started = time.time()
entries = []
failures = []
log_lines = []
taken_paths = set()


def log(line):
    log_lines.append(line)
    print("gather: " + line, flush=True)


def slug(text):
    text = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return text or "unnamed"


def add(kind, group, name, extension, package, source, licence, **extra):
    """Returns the path (under STAGING) for a new mesh and records it in the catalog."""
    folder = os.path.join(STAGING, kind, group)
    os.makedirs(folder, exist_ok=True)
    base, number = name, 2
    # A pending conversion has no file yet, so the recorded paths are checked too.
    while (os.path.exists(os.path.join(folder, name + extension)) or
           "%s/%s/%s%s" % (kind, group, name, extension) in taken_paths):
        name = "%s_%d" % (base, number)
        number += 1
    relative = "%s/%s/%s%s" % (kind, group, name, extension)
    taken_paths.add(relative)
    entry = {"path": relative, "kind": kind, "category" if kind == "toys" else "family": group, "name": name,
             "source_package": package, "source": source, "licence": licence}
    entry.update(extra)
    entries.append(entry)
    return os.path.join(STAGING, relative), entry


def drop(entry, reason):
    entries.remove(entry)
    failures.append({"source": entry["source"], "package": entry["source_package"], "reason": reason})
    log("FAILED %s: %s" % (entry["source"], reason))
    path = os.path.join(STAGING, entry["path"])
    if os.path.exists(path):
        os.remove(path)


# ---- sweethome3d-furniture ---------------------------------------------------------------

SH3F_DIR = "/usr/share/sweethome3d/furniture"
# Licences per catalog, from /usr/share/doc/sweethome3d-furniture/copyright.
SH3F_LICENCES = {"KatorLegaz": "CC-BY-3.0-US", "Reallusion": "CC-BY-3.0-US", "Scopia": "CC-BY-3.0",
                 "BlendSwap-CC-BY": "CC-BY-3.0", "BlendSwap-CC-0": "CC0-1.0"}


def read_properties(data):
    """Parses a Java .properties file (ISO-8859-1 with \\uXXXX escapes)."""
    text = data.decode("latin-1")
    properties, pending = {}, ""
    for raw in text.splitlines():
        line = pending + raw.lstrip()
        pending = ""
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending = line[:-1]
            continue
        if not line or line[0] in "#!":
            continue
        match = re.match(r"((?:[^=:\s\\]|\\.)+)\s*[=:]?\s*(.*)", line)
        if not match:
            continue
        unescape = lambda s: re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), s).replace("\\", "")
        properties[unescape(match.group(1))] = unescape(match.group(2))
    return properties


def object_type(name):
    """Guesses the object type from a catalog name: its last word that is not a number."""
    words = [w for w in re.findall(r"[a-z]+", name.lower()) if len(w) > 1]
    return words[-1] if words else "object"


def clean_obj(text):
    """Drops the face lines that od_mesh_read_obj rejects (fewer than three
    corners, or an index beyond the lists read so far), which some
    catalog models contain. Returns the text and the count dropped."""
    counts = {"v": 0, "vt": 0, "vn": 0}
    kept, dropped = [], 0
    for line in text.splitlines():
        tokens = line.split()
        if tokens and tokens[0] in counts:
            counts[tokens[0]] += 1
        elif tokens and tokens[0] == "f":
            valid = len(tokens) >= 4
            for corner in tokens[1:]:
                for index, kind in zip(corner.split("/"), ("v", "vt", "vn")):
                    if index == "":
                        continue
                    try:
                        value = int(index)
                    except ValueError:
                        valid = False
                        break
                    if value == 0 or value > counts[kind] or value < -counts[kind]:
                        valid = False
            if not valid:
                dropped += 1
                continue
        kept.append(line)
    return "\n".join(kept) + "\n", dropped


def find_member(names, requested, folder):
    """Finds an archive member: the exact path, then the same path in any
    letter case, then a unique file of the same base name in folder, then
    in the whole archive. Returns None when there is none."""
    if requested in names:
        return requested
    lower = {n.lower(): n for n in names}
    if requested.lower() in lower:
        return lower[requested.lower()]
    base = requested.replace("\\", "/").split("/")[-1].lower()
    for scope in (folder + "/", ""):
        matches = [n for n in names if n.startswith(scope) and n.split("/")[-1].lower() == base]
        if len(matches) == 1:
            return matches[0]
    return None


def object_type_counts():
    """Counts the furniture models of each object type over every catalog."""
    types = {}
    for file_name in sorted(os.listdir(SH3F_DIR)):
        if file_name.endswith(".sh3f"):
            with zipfile.ZipFile(os.path.join(SH3F_DIR, file_name)) as archive:
                properties = read_properties(archive.read("PluginFurnitureCatalog.properties"))
            for key, value in properties.items():
                if re.match(r"name#\d+$", key):
                    types[object_type(value)] = types.get(object_type(value), 0) + 1
    return types


def gather_sweethome3d():
    counts = {"models": 0, "skipped": 0, "faces_dropped": 0, "materials_fixed": 0, "textures_dropped": 0}
    type_counts = object_type_counts() if TOYS_BY == "type" else {}
    for file_name in sorted(os.listdir(SH3F_DIR)):
        if not file_name.endswith(".sh3f"):
            continue
        library = file_name[:-5]
        path = os.path.join(SH3F_DIR, file_name)
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            properties = read_properties(archive.read("PluginFurnitureCatalog.properties"))
            indices = sorted(int(k.split("#")[1]) for k in properties if re.match(r"model#\d+$", k))
            for index in indices:
                model = properties["model#%d" % index].lstrip("/")
                name = properties.get("name#%d" % index, os.path.basename(model))
                category = properties.get("category#%d" % index, "Miscellaneous")
                if not model.lower().endswith(".obj") or model not in names:
                    counts["skipped"] += 1
                    log("skipped %s:%s (model %s is not an OBJ in the archive)" % (file_name, name, model))
                    continue
                obj_dir = os.path.dirname(model)
                obj_text, dropped = clean_obj(archive.read(model).decode("latin-1"))
                folder = category
                if type_counts.get(object_type(name), 0) >= 3:
                    folder = object_type(name)
                target, entry = add("toys", slug(folder), slug(name), ".obj", "sweethome3d-furniture",
                                    "%s/%s:%s" % (SH3F_DIR, file_name, model), SH3F_LICENCES.get(library, "see copyright"),
                                    catalog_category=category, catalog_name=name, object_type=object_type(name),
                                    creator=properties.get("creator#%d" % index, ""))
                if dropped:
                    entry["faces_dropped"] = dropped
                    counts["faces_dropped"] += 1
                stem = os.path.basename(target)[:-4]
                asset_dir = os.path.join(os.path.dirname(target), stem)
                os.makedirs(asset_dir, exist_ok=True)
                # Each .mtl goes to <name>/ under its base name, and each texture
                # beside it; names that the archive lacks are looked up by base
                # name, and a texture still not found is dropped from the .mtl.
                def copy_mtl(match):
                    prefix, mtl = match.group(1), match.group(2)
                    member = find_member(names, os.path.normpath(os.path.join(obj_dir, mtl)), obj_dir)
                    if member is None:
                        # A lone .mtl beside the model is taken for a misnamed one.
                        beside = [n for n in names if os.path.dirname(n) == obj_dir and n.lower().endswith(".mtl")]
                        member = beside[0] if len(beside) == 1 else None
                        if member is None:
                            entry.setdefault("missing_files", []).append(mtl)
                            return "# " + match.group(0)
                        counts["materials_fixed"] += 1
                    mtl_lines = []
                    for line in archive.read(member).decode("latin-1").splitlines():
                        found = re.match(r"(\s*(?:map_\w+|bump|disp|decal|refl)\s+(?:-\S+(?:\s+[-0-9.]+)*\s+)*)(.*\S)",
                                         line)
                        if found:
                            texture = found.group(2)
                            texture_member = find_member(
                                names, os.path.normpath(os.path.join(os.path.dirname(member), texture)), obj_dir)
                            if texture_member is None:
                                entry.setdefault("missing_files", []).append(texture)
                                counts["textures_dropped"] += 1
                                continue
                            texture_name = os.path.basename(texture_member)
                            with open(os.path.join(asset_dir, texture_name), "wb") as f:
                                f.write(archive.read(texture_member))
                            # Options such as "-s 1 1 1" are dropped, because the OBJ reader takes
                            # the rest of the line as the file name.
                            line = found.group(1).split()[0] + " " + texture_name
                        mtl_lines.append(line)
                    mtl_name = os.path.basename(member)
                    with open(os.path.join(asset_dir, mtl_name), "w", encoding="latin-1") as f:
                        f.write("\n".join(mtl_lines) + "\n")
                    return prefix + stem + "/" + mtl_name

                rewritten = re.sub(r"(?m)^(\s*mtllib\s+)(.*\S)", copy_mtl, obj_text)
                with open(target, "w", encoding="latin-1") as f:
                    f.write(rewritten)
                counts["models"] += 1
    log("sweethome3d-furniture: %(models)d models, %(skipped)d skipped; faces dropped in %(faces_dropped)d, "
        "%(materials_fixed)d misnamed .mtl files found, %(textures_dropped)d missing textures dropped" % counts)


# ---- libcgal-demo ---------------------------------------------------------------------------

CGAL_TAR = "/usr/share/doc/libcgal-dev/data.tar.gz"
CGAL_LICENCE = "GPL-3+ or LGPL-3+ (CGAL; see /usr/share/doc/libcgal-demo/copyright)"
# Animals, people and other organic shapes: each is a category of its own.
CGAL_ORGANIC = {"armadillo": "armadillo", "bear": "bear", "bull": "bull", "bunny00": "bunny", "camel": "camel",
                "cow": "cow", "dino": "dino", "diplodocus": "diplodocus", "elephant": "elephant", "elk": "elk",
                "hand": "hand", "head": "head", "homer": "homer", "lion": "lion", "man": "man",
                "mannequin-devil": "mannequin", "mushroom": "mushroom", "nefertiti": "nefertiti", "pig": "pig",
                "triceratops": "triceratops", "ChineseDragon-10kv": "dragon", "cactus": "cactus", "femur": "femur",
                "lion-head": "lion_head", "bones": "bones"}
# Machined or modelled parts.
CGAL_CAD = ["ALSTOM_TEST4", "anchor", "blade", "couplingdown", "fandisk", "joint", "part", "pinion", "rotor",
            "spool", "turbine", "mech-holes-shark", "cheese", "itemb", "handle", "dragknob", "boeing", "plane",
            "pipe", "tripod", "b9_mesh", "helmet", "knot1", "cross", "u", "double-torus-example", "eight"]


def gather_cgal():
    count = 0
    with tarfile.open(CGAL_TAR) as archive:
        members = {m.name: m for m in archive.getmembers() if m.isfile()}
        for source, category in sorted(CGAL_ORGANIC.items()):
            member = "data/meshes/%s.off" % source
            if member not in members:
                log("skipped %s (not in %s)" % (member, CGAL_TAR))
                continue
            target, _ = add("toys", category, slug(source), ".off", "libcgal-demo", CGAL_TAR + ":" + member,
                            CGAL_LICENCE, object_type=category)
            with open(target, "wb") as f:
                f.write(archive.extractfile(members[member]).read())
            count += 1
        for source in CGAL_CAD:
            member = "data/meshes/%s.off" % source
            if member not in members:
                log("skipped %s (not in %s)" % (member, CGAL_TAR))
                continue
            target, _ = add("parts", slug(source), slug(source), ".off", "libcgal-demo", CGAL_TAR + ":" + member,
                            CGAL_LICENCE)
            with open(target, "wb") as f:
                f.write(archive.extractfile(members[member]).read())
            count += 1
    log("libcgal-demo: %d meshes" % count)


# ---- conversions (gmsh, openscad) ---------------------------------------------------------------

jobs = []  # (command, entry, target, cwd)


def convert_later(command, entry, target, cwd=None):
    jobs.append((command, entry, target, cwd))


def run_job(job):
    command, entry, target, cwd = job
    begin = time.time()
    try:
        result = subprocess.run(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                timeout=TIMEOUT)
        seconds = time.time() - begin
        if result.returncode != 0:
            tail = result.stdout.decode("utf-8", "replace").strip().splitlines()[-1:]
            return job, "exit status %d (%s)" % (result.returncode, tail[0] if tail else ""), seconds
        if not os.path.exists(target) or os.path.getsize(target) <= 84:
            return job, "no triangles written", seconds
        return job, None, seconds
    except subprocess.TimeoutExpired:
        return job, "timed out after %g s" % TIMEOUT, time.time() - begin


GMSH_OPTIONS = ["-2", "-format", "stl", "-setnumber", "Mesh.MeshSizeFromCurvature", "12",
                "-setnumber", "Mesh.Binary", "1", "-nt", "1"]
OCCT_DIR = "/usr/share/opencascade/data"
OCCT_LICENCE = "LGPL-2.1 with OpenCASCADE exception"
# Files that are a lone edge or face, a terrain or a room rather than a part.
OCCT_SKIP = {"edge", "face", "face1", "face2", "shell1", "terrain", "Room"}


def gather_occt():
    count = 0
    for sub, extensions in (("occ", (".brep",)), ("step", (".step", ".stp")), ("iges", (".iges", ".igs"))):
        folder = os.path.join(OCCT_DIR, sub)
        for file_name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            stem, extension = os.path.splitext(file_name)
            if extension.lower() not in extensions or stem in OCCT_SKIP:
                continue
            source = os.path.join(folder, file_name)
            target, entry = add("parts", slug(stem), slug(stem), ".stl", "occt-misc", source, OCCT_LICENCE,
                                converted_with="gmsh")
            convert_later(["gmsh", source] + GMSH_OPTIONS + ["-o", os.path.abspath(target)], entry, target)
            count += 1
    folder = os.path.join(OCCT_DIR, "stl")
    for file_name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        stem, extension = os.path.splitext(file_name)
        if extension.lower() != ".stl":
            continue
        target, _ = add("parts", slug(stem), slug(stem), ".stl", "occt-misc", os.path.join(folder, file_name),
                        OCCT_LICENCE)
        shutil.copyfile(os.path.join(folder, file_name), target)
        count += 1
    log("occt-misc: %d files (conversions pending)" % count)


GMSH_DEMOS = "/usr/share/doc/gmsh-doc/doc/gmsh/demos"
GMSH_LICENCE = "GPL-2+ (gmsh demos; see /usr/share/doc/gmsh-doc/copyright)"


def gather_gmsh_demos():
    count = 0
    seen = set()  # CAD files that more than one demo folder ships
    # Copy the demo folders that hold CAD files, unpacking .gz, so that
    # .geo files find the STEP files they import by relative path.
    for sub in ("boolean", "api"):
        source_dir = os.path.join(GMSH_DEMOS, sub)
        if not os.path.isdir(source_dir):
            continue
        work_dir = os.path.join(WORK, "gmsh_" + sub)
        os.makedirs(work_dir, exist_ok=True)
        origin = {}
        for file_name in os.listdir(source_dir):
            source = os.path.join(source_dir, file_name)
            if file_name.endswith(".gz"):
                origin[file_name[:-3]] = source
                with gzip.open(source) as f_in, open(os.path.join(work_dir, file_name[:-3]), "wb") as f_out:
                    shutil.copyfileobj(f_in, f_out)
            elif os.path.isfile(source):
                origin[file_name] = source
                shutil.copyfile(source, os.path.join(work_dir, file_name))
        for file_name in sorted(os.listdir(work_dir)):
            stem, extension = os.path.splitext(file_name)
            is_cad = extension.lower() in (".step", ".stp", ".brep", ".iges", ".igs")
            # The boolean demos build solids with OpenCASCADE; the api folder's .geo files are not parts.
            is_geo = extension == ".geo" and sub == "boolean"
            if not (is_cad or is_geo) or (is_cad and file_name in seen):
                continue
            if is_cad:
                seen.add(file_name)
            target, entry = add("parts", slug("gmsh_" + stem), slug(stem), ".stl", "gmsh-doc", origin[file_name],
                                GMSH_LICENCE, converted_with="gmsh")
            convert_later(["gmsh", file_name] + GMSH_OPTIONS + ["-o", os.path.abspath(target)], entry, target,
                          cwd=work_dir)
            count += 1
    lever = "/usr/share/doc/gmsh-doc/converters/stl_to_cartesian/lever.stl.gz"
    if os.path.exists(lever):
        target, _ = add("parts", "lever", "lever", ".stl", "gmsh-doc", lever, GMSH_LICENCE)
        with gzip.open(lever) as f_in, open(target, "wb") as f_out:
            shutil.copyfileobj(f_in, f_out)
        count += 1
    log("gmsh-doc: %d files (conversions pending)" % count)


MCAD_LICENCE = "LGPL-2.1 (OpenSCAD MCAD library; see /usr/share/doc/openscad-mcad/copyright)"


def mcad_variants():
    """Yields (family, name, scad source, parameters) for the parametric parts."""
    for teeth in (9, 12, 15, 19, 24, 31):
        for circles in ((0, 5) if teeth >= 15 else (0,)):
            yield ("gear", "gear_t%d_c%d" % (teeth, circles),
                   "use <MCAD/involute_gears.scad>\n"
                   "gear(number_of_teeth=%d, circular_pitch=300, gear_thickness=5, rim_thickness=8, "
                   "hub_thickness=12, hub_diameter=15, bore_diameter=5, circles=%d);\n" % (teeth, circles),
                   {"number_of_teeth": teeth, "circles": circles})
    for teeth in (12, 18, 24):
        yield ("bevel_gear", "bevel_gear_t%d" % teeth,
               "use <MCAD/involute_gears.scad>\n"
               "bevel_gear(number_of_teeth=%d, cone_distance=50, face_width=12, outside_circular_pitch=600, "
               "bore_diameter=6);\n" % teeth, {"number_of_teeth": teeth})
    for model in (603, 608, 625, 638, 688, 699):
        yield ("bearing", "bearing_%d" % model,
               "include <MCAD/units.scad>\nuse <MCAD/bearing.scad>\nbearing(model=%d);\n" % model, {"model": model})
    for module in ("bolt", "cap_bolt", "csk_bolt"):
        for diameter in ((3, 4, 5, 6, 8, 10) if module == "bolt" else (3, 5, 8)):
            for length in ((10, 20, 35) if module == "bolt" else (12, 25)):
                yield (module, "%s_m%d_l%d" % (module, diameter, length),
                       "include <MCAD/metric_fastners.scad>\n%s(%d, %d);\n" % (module, diameter, length),
                       {"diameter": diameter, "length": length})
    for diameter in (3, 4, 5, 6, 8, 10, 12):
        yield ("nut", "nut_m%d" % diameter, "include <MCAD/metric_fastners.scad>\nflat_nut(%d);\n" % diameter,
               {"diameter": diameter})
    for diameter in (3, 5, 8, 10, 12):
        yield ("washer", "washer_m%d" % diameter, "include <MCAD/metric_fastners.scad>\nwasher(%d);\n" % diameter,
               {"diameter": diameter})


def gather_mcad():
    count = 0
    scad_dir = os.path.join(WORK, "scad")
    os.makedirs(scad_dir, exist_ok=True)
    for family, name, source, parameters in mcad_variants():
        scad = os.path.join(scad_dir, name + ".scad")
        with open(scad, "w") as f:
            f.write(source)
        target, entry = add("parts", family, name, ".stl", "openscad-mcad", "MCAD " + source.splitlines()[-1],
                            MCAD_LICENCE, converted_with="openscad", parameters=parameters)
        convert_later(["openscad", "-o", os.path.abspath(target), scad], entry, target)
        count += 1
    log("openscad-mcad: %d parts (renders pending)" % count)


# ---- the run ----------------------------------------------------------------------------------

shutil.rmtree(STAGING, ignore_errors=True)
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(STAGING)
os.makedirs(WORK)
gather_sweethome3d()
gather_cgal()
gather_occt()
gather_gmsh_demos()
gather_mcad()
log("running %d conversions, %d at a time, %g s each at most" % (len(jobs), JOBS, TIMEOUT))
conversion_seconds = {}
with concurrent.futures.ThreadPoolExecutor(max_workers=JOBS) as pool:
    for job, problem, seconds in pool.map(run_job, jobs):
        command, entry, target, _ = job
        tool = command[0]
        conversion_seconds[tool] = conversion_seconds.get(tool, 0) + seconds
        if problem:
            drop(entry, "%s: %s" % (tool, problem))
        else:
            log("converted %s in %.1f s" % (entry["source"], seconds))

# Replace the previous output with the new one.
for kind in ("toys", "parts"):
    shutil.rmtree(os.path.join(OUT, kind), ignore_errors=True)
    if os.path.isdir(os.path.join(STAGING, kind)):
        os.rename(os.path.join(STAGING, kind), os.path.join(OUT, kind))
shutil.rmtree(STAGING, ignore_errors=True)
shutil.rmtree(WORK, ignore_errors=True)

counts = {}
for entry in entries:
    key = "%s/%s" % (entry["kind"], entry["source_package"])
    counts[key] = counts.get(key, 0) + 1
failure_counts = {}
for failure in failures:
    failure_counts[failure["package"]] = failure_counts.get(failure["package"], 0) + 1
elapsed = time.time() - started
catalog = {
    "generated_by": "scripts/gather_meshes.sh",
    "seconds": round(elapsed, 1),
    "conversion_seconds": {k: round(v, 1) for k, v in conversion_seconds.items()},
    "counts": counts,
    "toys": sum(1 for e in entries if e["kind"] == "toys"),
    "parts": sum(1 for e in entries if e["kind"] == "parts"),
    "toy_categories": len({e["category"] for e in entries if e["kind"] == "toys"}),
    "part_families": len({e["family"] for e in entries if e["kind"] == "parts"}),
    "failure_counts": failure_counts,
    "failures": failures,
    "meshes": sorted(entries, key=lambda e: e["path"]),
}
temporary = os.path.join(OUT, "catalog.json.tmp")
with open(temporary, "w") as f:
    json.dump(catalog, f, indent=1, ensure_ascii=False)
os.replace(temporary, os.path.join(OUT, "catalog.json"))
with open(os.path.join(OUT, "gather.log"), "w") as f:
    f.write("\n".join(log_lines) + "\n")
print("gather: %d toys in %d categories, %d parts in %d families, %d failed conversions, %.0f s; see %s" % (
    catalog["toys"], catalog["toy_categories"], catalog["parts"], catalog["part_families"], len(failures),
    elapsed, os.path.join(OUT, "catalog.json")))
for key in sorted(counts):
    print("gather:   %-36s %5d" % (key, counts[key]))
PYTHON
