#!/usr/bin/env bash
# Whole-process fit320 thumbnail benchmark: our command against vipsthumbnail, ImageMagick and the djpeg floor, on
# JPEG and PNG photographs and on GIF, WebP and HEIC files made here from the same photographs.
#
#   Benchmarks/thumbnails.sh [THUMB_CMD]
#
# THUMB_CMD (argument or environment) is our thumbnail command with IN and OUT placeholders; default
#   "$BIN/chat-thumbnail IN OUT --size fit320", built here (Benchmarks/common.sh: release in .build).
# A second table times the server's three sizes (crop96, fit320, fit800) from one decode, with and without the
#   second resizing thread, against vipsthumbnail once per size (only with the default command).
#   Needs: mate-backgrounds, libvips-tools, imagemagick, libjpeg-turbo-progs, webp, libheif-examples, time.
# Environment: RUNS (timed runs per tool and file, default 9), RSS_RUNS (default 3), WORK (scratch directory),
#   FORMAT_FILES (the GIF/WebP/HEIC files to make and time, default all seven), SIZES_FILES (the files of the
#   second table, default all).
# Wall time: median of RUNS, measured in-shell ($EPOCHREALTIME) so no wrapper process is counted.
# Peak memory: median of RSS_RUNS of `/usr/bin/time -f %M` (maximum resident set, KiB).
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/common.sh

THUMB_CMD=${1:-${THUMB_CMD:-}}
SIZES_CMD=""
if [ -z "$THUMB_CMD" ]; then
    build_products chat-thumbnail
    THUMB_CMD="$BIN/chat-thumbnail IN OUT --size fit320"
    SIZES_CMD="$BIN/chat-thumbnail IN OUT-{size}.jpg --size crop96 --size fit320 --size fit800"
fi
RUNS=${RUNS:-9}
RSS_RUNS=${RSS_RUNS:-3}
WORK=${WORK:-${TMPDIR:-/tmp}/thumb-bench-$$}
PHOTOS=/usr/share/backgrounds/mate
CONVERT=/usr/bin/convert # not a stand-in earlier on PATH

die() { echo "thumbnails.sh: $*" >&2; exit 1; }
for tool in vipsthumbnail vipsheader djpeg cjpeg "$CONVERT" /usr/bin/time cwebp img2webp heif-enc; do
    command -v "$tool" >/dev/null ||
        die "missing $tool (apt-get install -y libvips-tools libjpeg-turbo-progs imagemagick time webp libheif-examples)"
done
[ -f "$PHOTOS/abstract/Elephants_5640x3172.jpg" ] || die "missing $PHOTOS (apt-get install -y mate-backgrounds)"
first_word=${THUMB_CMD%% *}
command -v "$first_word" >/dev/null || [ -x "$first_word" ] || die "our command not found: $first_word (build it, or pass THUMB_CMD)"

mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
cp "$PHOTOS/abstract/Elephants_5640x3172.jpg" "$WORK/prog-5640x3172.jpg"             # progressive, EXIF
cp "$PHOTOS/nature/Blinds.jpg" "$WORK/base-1920x1200.jpg"                             # baseline, EXIF
djpeg -pnm "$PHOTOS/abstract/Elephants_5640x3172.jpg" | cjpeg -quality 90 >"$WORK/base-5640x3172.jpg"
"$CONVERT" "$PHOTOS/nature/Storm.jpg" "$WORK/png-1920x1280.png"
FILES=(prog-5640x3172.jpg base-5640x3172.jpg base-1920x1200.jpg png-1920x1280.png)

# GIF, WebP and HEIC from the same photographs. The animations are 30 frames of the 1920 px photograph at
# 640x360, each rolled 8 px further (ImageMagick optimises the GIF's later frames to the changed rectangles).
read -r -a FORMAT_FILES <<<"${FORMAT_FILES:-gif-anim-640x360.gif gif-1920x1200.gif webp-5640x3172.webp webp-1920x1200.webp webp-anim-640x360.webp heic-4032x3024.heic heic-1920x1200.heic}"
make_frames() {
    [ -f "$WORK/frame-29.png" ] && return
    "$CONVERT" "$PHOTOS/nature/Blinds.jpg" -resize 640x360^ -gravity center -extent 640x360 "$WORK/frame.png"
    for ((i = 0; i < 30; i++)); do "$CONVERT" "$WORK/frame.png" -roll +$((i * 8))+0 "$WORK/frame-$(printf %02d $i).png"; done
}
for f in "${FORMAT_FILES[@]}"; do
    case $f in
        gif-anim-640x360.gif) make_frames; "$CONVERT" -delay 4 "$WORK"/frame-??.png -layers Optimize "$WORK/$f" ;;
        gif-1920x1200.gif) "$CONVERT" "$PHOTOS/nature/Blinds.jpg" "$WORK/$f" ;;
        webp-5640x3172.webp) cwebp -quiet -q 80 "$PHOTOS/abstract/Elephants_5640x3172.jpg" -o "$WORK/$f" ;;
        webp-1920x1200.webp) cwebp -quiet -q 80 "$PHOTOS/nature/Blinds.jpg" -o "$WORK/$f" ;;
        webp-anim-640x360.webp) make_frames; img2webp -lossy -q 80 -d 40 "$WORK"/frame-??.png -o "$WORK/$f" 2>/dev/null ;; # it reports on stderr
        heic-4032x3024.heic) # an iPhone's 12 MP (one HEVC image: heif-enc writes no 512 px tiles as phones do)
            "$CONVERT" "$PHOTOS/abstract/Elephants_5640x3172.jpg" -resize 4032x3024^ -gravity center -extent 4032x3024 \
                -quality 95 "$WORK/heic-source.jpg"
            heif-enc -q 50 "$WORK/heic-source.jpg" -o "$WORK/$f" >/dev/null ;;
        heic-1920x1200.heic) heif-enc -q 50 "$PHOTOS/nature/Blinds.jpg" -o "$WORK/$f" >/dev/null ;;
        *) die "unknown FORMAT_FILES entry: $f" ;;
    esac
done
FILES+=("${FORMAT_FILES[@]}")

# Command line for a tool on one input; "" when the tool does not apply.
command_for() {
    local tool=$1 in=$2 out=$WORK/out
    case $tool in
        ours) local c=${THUMB_CMD//IN/$in}; echo "${c//OUT/$out-ours.jpg}" ;;
        sizes) local c=${SIZES_CMD//IN/$in}; echo "${c//OUT/$out-ours}" ;;
        sizes-1t) local c=${SIZES_CMD//IN/$in}; echo "${c//OUT/$out-ours} --one-thread" ;;
        vips3) echo "bash $WORK/vips3.sh $in $out-vips" ;;
        vips) echo "vipsthumbnail -s 320 -o $out-vips.jpg $in" ;;
        convert) echo "$CONVERT -define jpeg:size=640x640 $in[0] -thumbnail 320x320 $out-im.jpg" ;; # [0]: first frame
        djpeg) [[ $in == *.jpg ]] && echo "djpeg -scale 1/8 -outfile $out-djpeg.ppm $in" || echo "" ;;
        djpeg-n) # the DCT scale our rule picks (smallest n/8 leaving >= 640 px), when it is not 1/8
            [[ $in == *.jpg ]] || { echo ""; return; }
            local w h long n
            w=$(vipsheader -f width "$in"); h=$(vipsheader -f height "$in"); long=$((w > h ? w : h))
            for ((n = 1; n < 8; n++)); do (((long * n + 7) / 8 >= 640)) && break; done
            ((n > 1)) && echo "djpeg -scale $n/8 -outfile $out-djpeg.ppm $in" || echo "" ;;
    esac
}

median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# Prints "seconds KiB" for one tool and file.
measure() {
    local cmd=$1 times=() start end i
    read -r -a argv <<<"$cmd"
    "${argv[@]}" >/dev/null 2>&1 || die "failed: $cmd"
    for ((i = 0; i < RUNS; i++)); do
        start=$EPOCHREALTIME
        "${argv[@]}" >/dev/null 2>&1
        end=$EPOCHREALTIME
        times+=("$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.4f", b - a}')")
    done
    local rss=()
    for ((i = 0; i < RSS_RUNS; i++)); do
        /usr/bin/time -f %M -o "$WORK/rss" "${argv[@]}" >/dev/null 2>&1
        rss+=("$(tail -1 "$WORK/rss")")
    done
    echo "$(printf '%s\n' "${times[@]}" | median) $(printf '%s\n' "${rss[@]}" | median)"
}

echo "fit320, whole process; median of $RUNS runs (wall) and $RSS_RUNS runs (peak RSS); $(nproc) cores"
echo "ours: $THUMB_CMD"
printf '%-22s %-8s %9s %9s %12s %12s\n' file tool "wall s" "RSS MiB" "vs vips t/m" "vs djpeg t"
for f in "${FILES[@]}"; do
    declare -A T=() M=()
    for tool in djpeg djpeg-n vips convert ours; do
        cmd=$(command_for "$tool" "$WORK/$f")
        [ -n "$cmd" ] || continue
        read -r T[$tool] M[$tool] < <(measure "$cmd")
    done
    for tool in djpeg djpeg-n vips convert ours; do
        [ -n "${T[$tool]:-}" ] || continue
        vs_vips=$(awk -v a="${T[$tool]}" -v b="${T[vips]}" -v c="${M[$tool]}" -v d="${M[vips]}" \
            'BEGIN {printf "%.2f/%.2f", a / b, c / d}')
        vs_djpeg=-
        [ -n "${T[djpeg]:-}" ] && vs_djpeg=$(awk -v a="${T[$tool]}" -v b="${T[djpeg]}" 'BEGIN {printf "%.2f", a / b}')
        printf '%-22s %-8s %9s %9s %12s %12s\n' "$f" "$tool" "${T[$tool]}" \
            "$(awk -v k="${M[$tool]}" 'BEGIN {printf "%.1f", k / 1024}')" "$vs_vips" "$vs_djpeg"
    done
    unset T M
done
echo "djpeg-n: djpeg at the DCT scale our rule picks (n/8 leaving >= 2x 320 px), shown when that is not 1/8"
echo "targets: ours <= 0.90x vips in time and memory on every file; <= 1.30x djpeg on baseline JPEG"

[ -n "$SIZES_CMD" ] || exit 0
# What a user without our tool would run for the server's three sizes: vipsthumbnail once per size.
cat >"$WORK/vips3.sh" <<'EOF'
vipsthumbnail -s 96x96 -m centre -o "$2-96.jpg" "$1" && vipsthumbnail -s 320 -o "$2-320.jpg" "$1" &&
    vipsthumbnail -s 800 -o "$2-800.jpg" "$1"
EOF
echo
echo "the server's three sizes (crop96, fit320, fit800): ours from one decode (sizes-1t: without the second"
echo "resizing thread), against vipsthumbnail once per size (vips3, in one shell script)"
printf '%-22s %-8s %9s %9s %12s\n' file tool "wall s" "RSS MiB" "vs vips3 t/m"
read -r -a SIZES_FILES <<<"${SIZES_FILES:-${FILES[*]}}"
for f in "${SIZES_FILES[@]}"; do
    declare -A T=() M=()
    for tool in vips3 sizes-1t sizes; do
        read -r T[$tool] M[$tool] < <(measure "$(command_for "$tool" "$WORK/$f")")
    done
    for tool in vips3 sizes-1t sizes; do
        printf '%-22s %-8s %9s %9s %12s\n' "$f" "$tool" "${T[$tool]}" \
            "$(awk -v k="${M[$tool]}" 'BEGIN {printf "%.1f", k / 1024}')" \
            "$(awk -v a="${T[$tool]}" -v b="${T[vips3]}" -v c="${M[$tool]}" -v d="${M[vips3]}" \
                'BEGIN {printf "%.2f/%.2f", a / b, c / d}')"
    done
    unset T M
done
