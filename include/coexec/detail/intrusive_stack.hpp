// detail/intrusive_stack.hpp — the lock-free "push, then take all" stack.
//
// Many producers push; one consumer takes the whole stack with a single
// exchange. Nothing pops one node, so no pop races a push and there is no ABA
// problem; nothing allocates, the node carries its own link (`Next`).
// The list comes out newest first; reversed() gives arrival order.
//
// Users: the io reactor's cancel requests (push/take_all); a future's
// continuations, which use the closable form: the consumer takes the list
// for good with close(), and pushes after that fail, telling the producer
// the event already happened; thread_pool's inbox (submissions from other
// threads), closable too — once its workers are gone a late submission runs
// where it was made instead of being stranded — and drained by its workers
// with take_open().
// A stack is used in one form only: push/take_all, or try_push/take_open/close.
//
// Thread safety: push, try_push and the empty() hint from any thread;
// take_all and close from one consumer at a time; take_open from any number.
#pragma once

#include <atomic>

namespace coexec::detail {

template <class Node, Node* Node::*Next>
class intrusive_stack {
  public:
    /// Adds `n`. Any thread.
    void push(Node* n) noexcept {
        void* head = m_head.load(std::memory_order_relaxed);
        do {
            n->*Next = static_cast<Node*>(head);
            // release: the node's contents and link are visible to the
            // consumer whose acquire exchange (take_all) takes it.
        } while (!m_head.compare_exchange_weak(head, n, std::memory_order_release,
                                               std::memory_order_relaxed));
    }

    /// Takes every node, newest first; null if there is none. One consumer.
    Node* take_all() noexcept {
        // A relaxed look first: an empty stack costs no read-modify-write
        // (which would take the cache line from the producers).
        if (m_head.load(std::memory_order_relaxed) == nullptr) return nullptr;
        // acquire: pairs with push's release.
        return static_cast<Node*>(m_head.exchange(nullptr, std::memory_order_acquire));
    }

    /// Adds `n` unless the stack is closed: false (and `n` not added) if it is.
    bool try_push(Node* n) noexcept {
        // acquire on the load and on failure: a producer that finds the stack
        // closed synchronizes with close() and may read what the closer wrote
        // before it (the future's result). A successful CAS needs only
        // release (as in push); it is acq_rel as the future's continuation
        // list has always had it.
        void* head = m_head.load(std::memory_order_acquire);
        do {
            if (head == closed_marker()) return false;
            n->*Next = static_cast<Node*>(head);
        } while (!m_head.compare_exchange_weak(head, n, std::memory_order_acq_rel,
                                               std::memory_order_acquire));
        return true;
    }

    /// The closable form's take without closing: every node, newest first;
    /// null if there is none or the stack is closed. Any number of consumers
    /// (a CAS, not an exchange, so that a closed stack stays closed).
    Node* take_open() noexcept {
        void* head = m_head.load(std::memory_order_relaxed);
        do {
            if (head == nullptr || head == closed_marker()) return nullptr;
            // acquire: pairs with try_push's release.
        } while (!m_head.compare_exchange_weak(head, nullptr, std::memory_order_acquire,
                                               std::memory_order_relaxed));
        return static_cast<Node*>(head);
    }

    /// Closes the stack (later try_push calls fail) and takes every node,
    /// newest first. One consumer; a second close() takes nothing.
    Node* close() noexcept {
        // acq_rel: acquire pairs with try_push's release side; release
        // publishes what the closer wrote before (the future's result).
        void* head = m_head.exchange(closed_marker(), std::memory_order_acq_rel);
        return head == closed_marker() ? nullptr : static_cast<Node*>(head);
    }

    /// True if nothing is queued (a closed stack is not empty). A hint unless
    /// the caller's protocol orders it (then pass acquire).
    bool empty(std::memory_order order = std::memory_order_relaxed) const noexcept {
        return m_head.load(order) == nullptr;
    }

    /// Reverses a list taken from the stack: oldest first.
    static Node* reversed(Node* list) noexcept {
        Node* out = nullptr;
        while (list != nullptr) {
            Node* next = list->*Next;
            list->*Next = out;
            out = list;
            list = next;
        }
        return out;
    }

  private:
    // The closed state needs a value no node can have: this stack's address.
    void* closed_marker() const noexcept { return const_cast<intrusive_stack*>(this); }

    // void*, not Node*: the closed marker is not a Node.
    std::atomic<void*> m_head{nullptr};
};

}  // namespace coexec::detail
