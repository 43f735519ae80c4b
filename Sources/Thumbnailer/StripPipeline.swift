#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Decoding on the calling thread, resizing on a second one, strips of rows handed over through a few buffers.
///
/// libjpeg's Huffman decoding is one sequential pass that cannot be split, and it is most of a thumbnail's time;
/// the resize can run beside it on another core, so a thumbnail takes little longer than its decode. A plain
/// thread, not a task: the thumbnailer is synchronous and called from the server's blocking-work threads and from
/// a command-line tool, and the two sides must run at the same time, not whenever a cooperative pool has room.
enum StripPipeline {
    /// Strips in flight: the decoder fills one while the resizer works through another and one waits.
    static let slots = 3

    /// Calls `produce` on this thread to fill strips of at most `stripRows` rows of `rowBytes` bytes (it returns
    /// the rows it wrote, 0 at the end), and `consume` on a second thread with each strip in order. `consume` has
    /// finished with every strip when this returns or throws. With `threaded` false, or when no thread can be
    /// started, both run here, one after the other.
    ///
    /// `consume` runs on the other thread while this function runs: whatever it touches must not be used
    /// elsewhere until this returns (the caller hands it over and gets it back; nothing is shared).
    static func run(rowBytes: Int, stripRows: Int, threaded: Bool,
                    produce: (UnsafeMutablePointer<UInt8>, Int) throws(ThumbnailError) -> Int,
                    consume: @escaping (UnsafePointer<UInt8>, Int) -> Void) throws(ThumbnailError) {
        let stripBytes = rowBytes * stripRows
        let handoff = StripHandoff(stripBytes: stripBytes, slots: threaded ? slots : 1, consume: consume)
        guard threaded, let thread = handoff.startConsumer() else {
            let strip = handoff.buffer(0)
            while true {
                let rows = try produce(strip, stripRows)
                if rows == 0 { return }
                consume(strip, rows)
            }
        }
        defer {
            handoff.close()
            pthread_join(thread, nil)
        }
        while true {
            let strip = handoff.nextFree()
            let rows = try produce(strip, stripRows)
            if rows == 0 { return }
            handoff.publish(rows: rows)
        }
    }
}

/// The buffers and counters between the two threads. Strip i lives in buffer i % slots; `produced` and `consumed`
/// count strips, and every counter and `closed` is read and written under `mutex` only. A buffer belongs to the
/// producer from `nextFree` to `publish` and to the consumer from taking it to `consumed += 1`, so the pixel
/// bytes themselves need no lock.
private final class StripHandoff: @unchecked Sendable {
    private let storage: UnsafeMutablePointer<UInt8>
    private let stripBytes: Int
    private let slots: Int
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var rows: [Int]
    private var produced = 0
    private var consumed = 0
    private var closed = false
    /// Called on the consumer thread only (or, when there is none, by `StripPipeline.run` on its own thread).
    let consume: (UnsafePointer<UInt8>, Int) -> Void

    init(stripBytes: Int, slots: Int, consume: @escaping (UnsafePointer<UInt8>, Int) -> Void) {
        self.stripBytes = stripBytes
        self.slots = slots
        self.consume = consume
        storage = .allocate(capacity: stripBytes * slots)
        rows = [Int](repeating: 0, count: slots)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(changed, nil)
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(mutex)
        changed.deallocate()
        mutex.deallocate()
        storage.deallocate()
    }

    func buffer(_ slot: Int) -> UnsafeMutablePointer<UInt8> { storage + slot * stripBytes }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    private func wait() { pthread_cond_wait(changed, mutex) }

    // MARK: Producer side

    /// The buffer for the next strip, once the consumer has finished with what was in it.
    func nextFree() -> UnsafeMutablePointer<UInt8> {
        let slot = locked { () -> Int in
            while produced - consumed == slots { wait() }
            return produced % slots
        }
        return buffer(slot)
    }

    /// The strip from `nextFree` holds `rows` rows: hand it over.
    func publish(rows count: Int) {
        locked {
            rows[produced % slots] = count
            produced += 1
            pthread_cond_signal(changed)
        }
    }

    /// No more strips; the consumer finishes those it has and stops.
    func close() {
        locked {
            closed = true
            pthread_cond_signal(changed)
        }
    }

    // MARK: Consumer side

    /// Starts the consumer thread, or returns nil when the system refuses one. The thread holds a reference to the
    /// handoff until it ends.
    func startConsumer() -> pthread_t? {
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            Unmanaged<StripHandoff>.fromOpaque(raw).takeRetainedValue().consumeAll()
            return nil
        }, context)
        guard started == 0 else {
            Unmanaged<StripHandoff>.fromOpaque(context).release()
            return nil
        }
        return thread
    }

    private func consumeAll() {
        while true {
            let next = locked { () -> (slot: Int, rows: Int)? in
                while consumed == produced && !closed { wait() }
                guard consumed < produced else { return nil }
                let slot = consumed % slots
                return (slot, rows[slot])
            }
            guard let next else { return }
            consume(buffer(next.slot), next.rows)
            locked {
                consumed += 1
                pthread_cond_signal(changed)
            }
        }
    }
}
