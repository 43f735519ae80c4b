/// One finisher per hash at a time.
actor HashLocks {
    private var held: Set<String> = []
    private var waiting: [String: [CheckedContinuation<Void, Never>]] = [:]

    func lock(_ hash: String) async {
        guard held.contains(hash) else {
            held.insert(hash)
            return
        }
        await withCheckedContinuation { waiting[hash, default: []].append($0) }
    }

    func unlock(_ hash: String) {
        if var queue = waiting[hash], !queue.isEmpty {
            let next = queue.removeFirst()
            waiting[hash] = queue.isEmpty ? nil : queue
            next.resume()  // ownership passes to the next waiter
        } else {
            held.remove(hash)
        }
    }
}

